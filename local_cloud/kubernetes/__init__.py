"""The Kubernetes side of the emulator, laid out as an API server and a node:

- api.py: the core/v1 routes KubernetesPodOperator uses (pods, events, logs), journalled;
- admission.py: a pod checked as the API server checks it beyond the JSON schemas;
- selectors.py: label and field selectors; status.py: the version and v1 Status errors;
- kubelet.py: each pod's life and containers; images.py: Dockerfiles as images (dockerfile-parse);
- containers.py: the container engine (podman or docker); logs.py: CRI-format logs written and
  followed; units.py: quantities and times.
"""
