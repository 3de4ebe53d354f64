"""Cloud Functions deploy: bundles and gcloud commands (``build``), the deploy table
(``table``) and the API Gateway document (``gateway``), all from ``common/routes.py``."""
