"""Deploy targets built from the route table: the cloud functions bundles and gateway
document (``deploy.cloudfunctions``), Kubernetes manifests and gunicorn settings (files)."""
