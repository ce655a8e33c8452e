"""Images the emulator's kubelet can "pull": a repository name stands for a Dockerfile of the
project, read for the image's runtime configuration (ENTRYPOINT, CMD, WORKDIR, ENV, USER of the
last stage) and, with a container engine, built by it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockerfile_parse import DockerfileParser
from dockerfile_parse.util import WordSplitter, extract_key_values

from local_cloud.kubernetes.containers import Engine, EngineError, Images


@dataclass(frozen=True)
class Image:
    """What a Dockerfile's last stage tells the runtime about its image."""

    dockerfile: Path
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    workdir: str = "/"
    env: tuple[tuple[str, str], ...] = ()
    user: str = ""
    tag: str = ""  # the built image, when an engine runs the pods
    image_id: str = ""

    @property
    def uid(self) -> int | None:
        """The numeric user the image runs as (root when it names none), or None for a user name."""
        name = self.user.split(":")[0] or "0"
        return int(name) if name.isdigit() else None


def parse_dockerfile(path: Path) -> Image:
    """The runtime configuration of a Dockerfile's last stage (the base image's own is unknown),
    read with dockerfile-parse: its instructions with continuations and comments handled, and
    ARG and ENV values substituted as Docker does."""
    image = Image(path)
    args: dict[str, str] = {}
    env: dict[str, str] = {}
    cmd_set = False
    for item in DockerfileParser(path=str(path), env_replace=False).structure:
        instruction, rest = item["instruction"], item["value"]
        if instruction == "FROM":
            image, env, cmd_set = Image(path), {}, False
        elif instruction == "ARG":
            name, _, default = rest.partition("=")
            args[name.strip()] = WordSplitter(default.strip()).dequote()
        elif instruction == "ENV":
            env.update(extract_key_values(True, args, env, rest))
            image = replace_image(image, env=tuple(env.items()))
        elif instruction == "WORKDIR":
            image = replace_image(image, workdir=os.path.join(image.workdir, _substitute(rest, args | env)))
        elif instruction == "USER":
            image = replace_image(image, user=_substitute(rest, args | env).strip())
        elif instruction == "ENTRYPOINT":
            # Docker resets an inherited CMD when ENTRYPOINT is set, but keeps one set in this stage.
            image = replace_image(image, entrypoint=_exec_form(rest), cmd=image.cmd if cmd_set else ())
        elif instruction == "CMD":
            image, cmd_set = replace_image(image, cmd=_exec_form(rest)), True
    return image


def replace_image(image: Image, **changes: Any) -> Image:
    return Image(**{**image.__dict__, **changes})


def _substitute(text: str, variables: Mapping[str, str]) -> str:
    return str(WordSplitter(text, args=dict(variables), envs={}).dequote())


def _exec_form(rest: str) -> tuple[str, ...]:
    if rest.startswith("["):
        try:
            words = json.loads(rest)
        except ValueError:
            words = None
        if isinstance(words, list) and all(isinstance(w, str) for w in words):
            return tuple(words)
    return ("/bin/sh", "-c", rest)  # the shell form, as Docker runs it


def repository(reference: str) -> str:
    """An image reference's repository path, without registry host, tag or digest."""
    name = reference.split("@", 1)[0]
    slash = name.rfind("/")
    if ":" in name[slash + 1 :]:
        name = name[: name.rfind(":")]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        name = rest
    return name


class PullError(Exception):
    """The image cannot be had: unknown to the catalog, or its build failed."""


class ImageCatalog:
    """The images the emulator can "pull": repository name -> Dockerfile."""

    def __init__(
        self,
        images: Mapping[str, Path],
        context: Path,
        node_env: Mapping[str, str] = {},  # noqa: B006 (read only)
        engine: Engine | None = None,
        label: str = "",
    ):
        """`node_env` is what every container gets from the node, as on EKS (the region and the
        pod's role credentials): here the emulator's endpoint and credentials. Read at each start.
        With an `engine` images are built and containers run there, labelled `label`."""
        self.context = context
        self.node_env = node_env
        self.engine = engine
        self.label = label
        self._builds = Images(engine, context) if engine else None
        self._dockerfiles = {name: Path(path) for name, path in images.items()}

    @property
    def names(self) -> list[str]:
        return sorted(self._dockerfiles)

    def resolve(self, reference: str) -> Image | None:
        """The image a reference names, matched by repository (or its last path segment)."""
        repo = repository(reference)
        for candidate in (repo, repo.rsplit("/", 1)[-1]):
            if candidate in self._dockerfiles:
                # Parsed on every pull so an edited Dockerfile counts, as a rebuilt image would.
                return parse_dockerfile(self._dockerfiles[candidate])
        return None

    def pull(self, reference: str) -> Image:
        """The image, built by the engine if there is one (its layer cache keeps a rebuild short)."""
        image = self.resolve(reference)
        if image is None:
            known = ", ".join(self.names) or "none"
            raise PullError(
                f'the local cloud emulator has no Dockerfile for repository "{repository(reference)}" '
                f"(it knows: {known})"
            )
        if self._builds is None:
            return replace_image(image, image_id=f"local-cloud://{image.dockerfile}")
        try:
            tag, image_id, user = self._builds.build(repository(reference), image.dockerfile)
        except (EngineError, subprocess.TimeoutExpired) as exc:
            raise PullError(f"building {image.dockerfile.name} failed: {exc}") from None
        # The built image's user is what the node checks.
        return replace_image(image, tag=tag, image_id=image_id, user=user)
