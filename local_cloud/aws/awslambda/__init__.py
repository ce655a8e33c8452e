"""Lambda: the Invoke API (service.py), sandboxes running the handler in AWS's runtime interface
client (sandbox.py), and the runtimes' interpreters (runtimes.py).
"""
