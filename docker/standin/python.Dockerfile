# A stand-in for the official python:3.11-slim-bookworm image, for machines that reach Debian's
# mirror but no container registry: Debian bookworm's own Python 3.11 and pip on a minimal root
# made by debootstrap with ca-certificates (see build.sh; installing it here would clash with the
# engine's bind-mounted CA bundle). Debian's python3 lives in /usr/bin, the official image's in
# /usr/local/bin: the project's Dockerfiles call `python` and `pip` through PATH, never by path.
FROM localhost/bookworm-minbase
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3-pip python-is-python3 \
    && rm -rf /var/lib/apt/lists/* /usr/lib/python3.11/EXTERNALLY-MANAGED \
    && ln -s /usr/bin/pip3 /usr/local/bin/pip
ENV LANG=C.UTF-8
CMD ["python3"]
