"""Model weights: what vpipe knows about, where it looks, how it gets them.

- `catalogue` (+ catalogue.json): the published models, their URLs, checksums and sizes (pure data)
- `lookup`: where a model is found ($VPIPE_MODELS_DIR, then the user cache) and checked
- `store`: what is present, and `pull` from the canonical URL into the cache
- `importer`: `vpipe models import`, a local copy into the cache
"""
