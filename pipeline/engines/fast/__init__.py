"""The fast engine: Johnson/Engstrom feed-forward style transfer, one network pass per frame.

- `weights`: the on-disk layout (pure numpy), read and checked; shared with `vpipe train-style`
- `network`: the transform net in TensorFlow (the reference, and the forms rearranged for inference)
- `xnnpack`: the net converted once and run by LiteRT (the CPU default, no TensorFlow in the worker)
- `tiles`: frames over the memory budget, in tiles, with the untiled result
- `precision`: the number format of the convolutions
- `engine`: FastEngine, which picks among them per frame
"""
