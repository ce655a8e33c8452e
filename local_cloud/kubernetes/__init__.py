"""The Kubernetes side of the emulator: the API server's pod, event and log endpoints with admission
(api.py), the kubelet that runs each pod (kubelet.py), and the container engine it runs them
in (containers.py: podman or docker).
"""
