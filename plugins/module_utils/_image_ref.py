# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image reference parsing: the one place that knows what ``repo:tag@sha256:...`` means.

Follows the grammar of the distribution project's reference package, including Docker's
normalisation rules (``busybox`` means ``docker.io/library/busybox:latest``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_PATH_RE = re.compile(r"^%s(?:/%s)*$" % (_COMPONENT, _COMPONENT))
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_IMAGE_ID_RE = re.compile(r"^(?:sha256:)?[a-f0-9]{64}$")
_HOST_RE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$"
)


class ImageRefError(ValueError):
    """A reference that cannot be parsed; the message says what is wrong and how to write it."""


@dataclass(frozen=True)
class ImageRef:
    registry: str
    path: str
    tag: Optional[str] = None
    digest: Optional[str] = None

    @property
    def repository(self) -> str:
        """Registry plus path, as used in ``repo@digest`` (``docker.io`` kept implicit, like the CLI)."""
        if self.registry == DEFAULT_REGISTRY:
            short = self.path[len("library/"):] if self.path.startswith("library/") else self.path
            return short
        return "%s/%s" % (self.registry, self.path)

    @property
    def is_pinned(self) -> bool:
        return self.digest is not None

    @property
    def tag_or_default(self) -> str:
        return self.tag or DEFAULT_TAG

    @property
    def pinned(self) -> str:
        """``repo@sha256:...``; only valid for a reference that carries a digest."""
        if self.digest is None:
            raise ImageRefError("%s carries no digest" % self)
        return "%s@%s" % (self.repository, self.digest)

    @property
    def tagged(self) -> str:
        return "%s:%s" % (self.repository, self.tag_or_default)

    @property
    def registry_api_host(self) -> str:
        """Host the registry API answers on (Docker Hub's API is not on docker.io itself)."""
        return "registry-1.docker.io" if self.registry == DEFAULT_REGISTRY else self.registry

    def with_digest(self, digest: str) -> "ImageRef":
        if not _DIGEST_RE.match(digest):
            raise ImageRefError("digest %r is not of the form sha256:<64 hex digits>" % digest)
        return ImageRef(self.registry, self.path, self.tag, digest)

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text


def _split_registry(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not _HOST_RE.match(first):
            raise ImageRefError("registry host %r is not a valid host[:port]" % first)
        return first, rest
    return DEFAULT_REGISTRY, name


def parse_image_ref(text: str) -> ImageRef:
    """Parse ``[registry/]path[:tag][@sha256:hex]``; raise ImageRefError with a fix on bad input."""
    if not isinstance(text, str) or not text.strip():
        raise ImageRefError("image reference is empty; write it as repo:tag or repo@sha256:<digest>")
    if text != text.strip() or any(c.isspace() for c in text):
        raise ImageRefError("image reference %r contains white space" % text)
    if _IMAGE_ID_RE.match(text):
        raise ImageRefError(
            "%r is an image ID, which only means something on the host that built or pulled it: give the repository "
            "with its digest, repo@sha256:<digest> (docker image inspect --format '{{index .RepoDigests 0}}' shows it, "
            "dockhand.containers.image_digest resolves a tag to it)" % text)
    remainder, at, digest = text.partition("@")
    if at:
        if not _DIGEST_RE.match(digest):
            raise ImageRefError(
                "image reference %r has a malformed digest %r: expected sha256: followed by 64 lowercase hex digits"
                % (text, digest)
            )
    registry, path_and_tag = _split_registry(remainder)
    path, tag = path_and_tag, None
    last_slash = path_and_tag.rfind("/")
    colon = path_and_tag.rfind(":")
    if colon > last_slash:
        path, tag = path_and_tag[:colon], path_and_tag[colon + 1:]
        if not _TAG_RE.match(tag):
            raise ImageRefError(
                "image reference %r has an invalid tag %r: up to 128 letters, digits, '_', '.', '-', not starting with '.' or '-'"
                % (text, tag)
            )
    if not path or not _PATH_RE.match(path):
        raise ImageRefError(
            "image reference %r has an invalid repository %r: lowercase letters, digits and separators (. _ __ -) in /-separated parts"
            % (text, path)
        )
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = "library/" + path
    return ImageRef(registry=registry, path=path, tag=tag, digest=digest or None)
