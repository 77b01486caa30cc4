"""The typed, versioned block schema of a landing page.

A page's content is ``PageContent``: a schema version, a theme, and a list of
blocks, each tagged by ``type``. Everything is validated on write; rich text
and raw HTML are sanitized on the way in, so what is stored is already safe.
Bump ``SCHEMA_VERSION`` and add an upgrade step when a block changes shape.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args
from urllib.parse import parse_qs, urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    Strict,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from landform.core.schemas import InputModel
from landform.files.kinds import BY_EXTENSION
from landform.files.storage import KEY as STORAGE_KEY
from landform.pages.sanitize import clean_raw_html, clean_rich_text

SCHEMA_VERSION: Literal[1] = 1
MAX_BLOCKS = 200

_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\s]")


def _check_url(value: str) -> str:
    """http(s), mailto, tel, a site-relative path or an in-page anchor."""
    if _UNSAFE_CHARS.search(value):
        raise ValueError("URL must not contain spaces or control characters")
    if "\\" in value:
        # Browsers read it as "/": the path /\evil.com is //evil.com, another site.
        raise ValueError("URL must not contain a backslash")
    if value.startswith("#") or (value.startswith("/") and not value.startswith("//")):
        return value
    scheme = urlsplit(value).scheme.lower()
    if scheme in ("http", "https"):
        if not urlsplit(value).netloc:
            raise ValueError("URL needs a host")
        return value
    if scheme in ("mailto", "tel"):
        return value
    raise ValueError("URL must be http(s), mailto:, tel:, a path starting with / or an #anchor")


def _check_image_url(value: str) -> str:
    """https or a site-relative path: published pages allow only those images
    (their CSP), and a plain-http image on an https page would be blocked."""
    _check_url(value)
    if value.startswith("#") or urlsplit(value).scheme.lower() in ("mailto", "tel", "http"):
        raise ValueError("image URL must be https:// or a path starting with /")
    # An upload's address says its kind (its extension comes from its bytes):
    # a PDF or a video in an image's place was a broken image on the page.
    kind = BY_EXTENSION.get(value.rsplit(".", 1)[-1]) if _UPLOAD.match(value) else None
    if kind is not None and kind.category != "image":
        raise ValueError(f"{value} is a {kind.category} upload, not an image")
    return value


_UPLOAD = re.compile(f"/assets/{STORAGE_KEY}$")


Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)]
RequiredText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)
]
LongText = Annotated[str, StringConstraints(max_length=5000)]
Url = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2048), AfterValidator(_check_url)
]
ImageUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2048), AfterValidator(_check_image_url)
]


def _exact_int(value: Any) -> Any:
    if isinstance(value, bool | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# For a choice of numbers (Literal[1, 2]): pydantic takes ``true`` and
# ``2.0`` for them, where Strict() cannot apply; no other number in the API
# is taken that way.
EXACT_INT = BeforeValidator(_exact_int)


def _cleaned_within(limit: int) -> AfterValidator:
    """Cleaning escapes (``&`` becomes ``&amp;``), so what is stored can be
    longer than what was sent: the limit holds for the stored text too, or
    content saved once would fail its own validation when published."""

    def check(cleaned: str) -> str:
        if len(cleaned) > limit:
            raise PydanticCustomError(
                "string_too_long",
                "String should have at most {max_length} characters once made safe "
                "(it grew to {length}: characters such as & and < are escaped)",
                {"max_length": limit, "length": len(cleaned)},
            )
        return cleaned

    return AfterValidator(check)


RICH_HTML_MAX = 50_000
RAW_HTML_MAX = 100_000
RichHtml = Annotated[
    str,
    StringConstraints(max_length=RICH_HTML_MAX),
    AfterValidator(clean_rich_text),
    _cleaned_within(RICH_HTML_MAX),
]


def _images_over_https(html: str) -> str:
    """The page's CSP takes images over https only (``img-src 'self' https:
    data:``): an http:// image in the HTML was accepted, then blocked on the
    live page, a hole nobody was told about. It is asked for over https, as
    browsers upgrade mixed content. Rewritten rather than refused: stored
    content is validated again when rendered (a republish, a slug change),
    and what was accepted before must still render."""
    return _HTTP_IMG_SOURCE.sub(r"\1https:", html)


_HTTP_IMG_SOURCE = re.compile(r'(<img\b[^>]*?\ssrc="\s*)http:', re.IGNORECASE)

RawHtml = Annotated[
    str,
    StringConstraints(max_length=RAW_HTML_MAX),
    AfterValidator(clean_raw_html),
    AfterValidator(_images_over_https),
    _cleaned_within(RAW_HTML_MAX),
]
BlockId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,39}$")]
HexColor = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]


class _Model(InputModel):
    pass


class _Block(_Model):
    id: BlockId | None = Field(default=None, description="Optional anchor id (#id)")


class HeroBlock(_Block):
    type: Literal["hero"]
    eyebrow: ShortText = ""
    headline: RequiredText
    subheadline: Text = ""
    cta_label: ShortText = ""
    cta_url: Url | None = None
    secondary_label: ShortText = ""
    secondary_url: Url | None = None
    image_url: ImageUrl | None = None
    image_alt: Text = ""
    # An upload's size is known; another site's image needs it said, or the
    # page jumps when the image arrives (the image block's width and height).
    image_width: Annotated[int, Strict()] | None = Field(default=None, ge=1, le=10000)
    image_height: Annotated[int, Strict()] | None = Field(default=None, ge=1, le=10000)
    align: Literal["left", "center"] = "center"


class HeadingBlock(_Block):
    type: Literal["heading"]
    text: RequiredText
    level: Annotated[Literal[1, 2, 3, 4], EXACT_INT] = 2
    align: Literal["left", "center"] = "left"


class RichTextBlock(_Block):
    type: Literal["rich_text"]
    html: RichHtml


class ImageBlock(_Block):
    type: Literal["image"]
    url: ImageUrl
    alt: Text
    caption: Text = ""
    width: Annotated[int, Strict()] | None = Field(default=None, ge=1, le=10000)
    height: Annotated[int, Strict()] | None = Field(default=None, ge=1, le=10000)
    link_url: Url | None = None


class FeatureItem(_Model):
    title: RequiredText
    text: Text = ""
    icon: ShortText = Field(default="", description="An emoji or a short symbol")


class FeaturesBlock(_Block):
    type: Literal["features"]
    title: Text = ""
    intro: Text = ""
    columns: Literal[2, 3, 4] = 3
    items: list[FeatureItem] = Field(min_length=1, max_length=24)


class TestimonialBlock(_Block):
    type: Literal["testimonial"]
    quote: RequiredText
    author: RequiredText
    role: Text = ""
    avatar_url: ImageUrl | None = None


class PricingPlan(_Model):
    name: RequiredText
    price: ShortText
    period: ShortText = ""
    description: Text = ""
    features: list[Text] = Field(default_factory=list, max_length=30)
    cta_label: ShortText = ""
    cta_url: Url | None = None
    highlighted: Annotated[bool, Strict()] = False


class PricingBlock(_Block):
    type: Literal["pricing"]
    title: Text = ""
    intro: Text = ""
    plans: list[PricingPlan] = Field(min_length=1, max_length=6)


class CtaBlock(_Block):
    type: Literal["cta"]
    title: Text = ""
    text: Text = ""
    label: RequiredText
    url: Url
    style: Literal["primary", "secondary"] = "primary"
    note: Text = ""


class FaqItem(_Model):
    question: RequiredText
    answer: LongText


class FaqBlock(_Block):
    type: Literal["faq"]
    title: Text = ""
    items: list[FaqItem] = Field(min_length=1, max_length=50)


class SpacerBlock(_Block):
    type: Literal["spacer"]
    size: Literal["sm", "md", "lg", "xl"] = "md"


VIDEO_PROVIDERS = {
    "youtube": "https://www.youtube-nocookie.com/embed/{id}",
    "vimeo": "https://player.vimeo.com/video/{id}",
    "loom": "https://www.loom.com/embed/{id}",
}
# A showcase (an album, before Vimeo renamed them) plays as one embed of its own.
VIMEO_SHOWCASE = "https://vimeo.com/showcase/{id}/embed"
_VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# An unlisted Vimeo video plays only with the hash of its share link.
_VIMEO_HASH = re.compile(r"^[0-9A-Za-z]{1,64}$")
_NOT_ONE_VIMEO_VIDEO = (
    "a Vimeo {} link shows many videos, not one: link to one of its videos "
    "(vimeo.com/123456789), or to a showcase (vimeo.com/showcase/123456)"
)


def video_embed_url(url: str) -> str:
    """The address a page frames to play an allowed provider's video (or
    Vimeo showcase) at ``url``, else ValueError saying why."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().removeprefix("www.").removeprefix("m.")
    path = [p for p in parts.path.split("/") if p]
    video_id = ""
    provider = ""
    if parts.scheme not in ("http", "https"):
        raise ValueError("video URL must be http(s)")
    if host in ("youtube.com", "youtube-nocookie.com"):
        provider = "youtube"
        if path[:1] == ["watch"]:
            video_id = parse_qs(parts.query).get("v", [""])[0]
        elif len(path) == 2 and path[0] in ("embed", "shorts", "live"):
            video_id = path[1]
    elif host == "youtu.be" and len(path) == 1:
        provider, video_id = "youtube", path[0]
    elif host in ("vimeo.com", "player.vimeo.com"):
        return _vimeo_embed_url(host, path, parts.query)
    elif host == "loom.com" and len(path) == 2 and path[0] in ("share", "embed"):
        provider, video_id = "loom", path[1]
    if not provider:
        raise ValueError(f"video provider not allowed; use one of: {', '.join(VIDEO_PROVIDERS)}")
    if not _VIDEO_ID.match(video_id):
        raise ValueError("could not find a video id in the URL")
    embed = VIDEO_PROVIDERS[provider].format(id=video_id)
    start = start_seconds(url) if provider == "youtube" else 0
    return f"{embed}?start={start}" if start else embed


def _vimeo_embed_url(host: str, path: list[str], query: str) -> str:
    """Vimeo's links: a video (vimeo.com/1), an unlisted one with its hash
    (vimeo.com/1/abc, player.vimeo.com/video/1?h=abc), one seen in a
    channel, group or showcase, or a showcase itself."""
    video_id, privacy = "", ""
    head = path[0] if path else ""
    if host == "player.vimeo.com":
        video_id = path[1] if len(path) == 2 and head == "video" else ""
        privacy = parse_qs(query).get("h", [""])[0]
    elif head in ("showcase", "album"):
        if len(path) == 4 and path[2] == "video":
            video_id = path[3]
        elif len(path) in (2, 3) and path[1].isdigit() and path[2:] in ([], ["embed"]):
            return VIMEO_SHOWCASE.format(id=path[1])
        else:
            raise ValueError("could not find a showcase id in the Vimeo URL")
    elif head == "channels":
        if len(path) != 3:
            raise ValueError(_NOT_ONE_VIMEO_VIDEO.format("channel"))
        video_id = path[2]
    elif head == "groups":
        if len(path) != 4 or path[2] != "videos":
            raise ValueError(_NOT_ONE_VIMEO_VIDEO.format("group"))
        video_id = path[3]
    elif head.isdigit() and len(path) <= 2:
        video_id, privacy = head, (path[1] if len(path) == 2 else "")
    elif path:  # a video as seen elsewhere on Vimeo (vimeo.com/manage/videos/1)
        video_id = path[-1]
    if not video_id.isdigit() or len(video_id) > 20:
        raise ValueError("could not find a video id in the Vimeo URL (vimeo.com/123456789)")
    if privacy and not _VIMEO_HASH.match(privacy):
        raise ValueError("an unlisted Vimeo video's hash is letters and digits (vimeo.com/1/abc)")
    embed = VIDEO_PROVIDERS["vimeo"].format(id=video_id)
    return f"{embed}?h={privacy}" if privacy else embed


class VideoBlock(_Block):
    type: Literal["video"]
    url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2048)]
    title: RequiredText
    caption: Text = ""

    @field_validator("url")
    @classmethod
    def _allowed_provider(cls, url: str) -> str:
        # On the field, so a refusal names it (blocks[2].url), not the block.
        video_embed_url(url)
        return url

    @property
    def embed_url(self) -> str:
        return video_embed_url(self.url)


def start_seconds(url: str) -> int:
    """Where a YouTube link starts playing (``t=42``, ``t=1m30s``,
    ``start=90``), in seconds; 0 when it does not say."""
    parts = urlsplit(url)
    # In the query (?t=90, ?start=90) or, as links copied from a player, the
    # fragment (#t=90).
    query = {**parse_qs(parts.fragment), **parse_qs(parts.query)}
    given = (query.get("t") or query.get("start") or [""])[0]
    found = _START.fullmatch(given)
    if found is None:
        return 0
    hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return min(hours * 3600 + minutes * 60 + seconds, 86_400 * 7)


_START = re.compile(r"(?:(\d{1,3})h)?(?:(\d{1,4})m)?(?:(\d{1,6})s?)?")


class HtmlBlock(_Block):
    type: Literal["html"]
    html: RawHtml


def _check_form_action(value: str) -> str:
    """An https address outside the page: the form goes to the service that
    keeps the sign-ups (Mailchimp, ConvertKit, HubSpot, Formspree, …), over
    TLS, since what a visitor types there is theirs to protect."""
    _check_url(value)
    parts = urlsplit(value)
    if parts.scheme.lower() != "https":
        raise ValueError("a form's action must be an https:// address (where its sign-ups go)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("a form's action must hold no user name or password: visitors see it")
    try:
        port = parts.port
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        host, port = "", None
    expected = (parts.hostname or "") + (f":{port}" if port is not None else "")
    if not _HOST.fullmatch(host) or parts.netloc.lower() != expected:
        raise ValueError("a form's action must name a host (a domain name), as https://host/path")
    return value


# A domain name as DNS spells it (IDNA-encoded, at least one dot).
_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]")


FormAction = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=2048),
    AfterValidator(_check_form_action),
]
# As sign-up services name their fields: EMAIL, FNAME, email, _replyto,
# fields[email], b_1234_abcd (a honeypot).
FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.\[\]-]{0,63}$")]


class FormField(_Model):
    name: FieldName = Field(description="What the receiving service calls it, e.g. EMAIL")
    label: RequiredText
    type: Literal["email", "text", "tel", "textarea"] = "text"
    required: Annotated[bool, Strict()] = False
    placeholder: ShortText = ""


class FormBlock(_Block):
    """A sign-up form that posts to the marketer's own list or CRM. Its
    submissions count as ``form_submit`` conversions (the page's beacon)."""

    type: Literal["form"]
    title: Text = ""
    text: Text = ""
    action: FormAction = Field(description="Where the form posts (https), e.g. a list's URL")
    fields: list[FormField] = Field(min_length=1, max_length=12)
    hidden: dict[FieldName, ShortText] = Field(
        default_factory=dict, max_length=10, description="Fields sent as they are (list ids)"
    )
    submit_label: RequiredText
    note: Text = Field(default="", description="Shown under the button, e.g. a privacy note")

    @model_validator(mode="after")
    def _names_are_unique(self) -> FormBlock:
        seen: set[str] = set(self.hidden)
        for index, field in enumerate(self.fields):
            if field.name in seen:
                raise PydanticCustomError(
                    "field_name_taken",
                    "'{name}' names another field of this form already",
                    {"name": field.name, "at": ("fields", index, "name")},
                )
            seen.add(field.name)
        return self


LeafBlock = Annotated[
    HeroBlock
    | HeadingBlock
    | RichTextBlock
    | ImageBlock
    | FeaturesBlock
    | TestimonialBlock
    | PricingBlock
    | CtaBlock
    | FaqBlock
    | SpacerBlock
    | VideoBlock
    | HtmlBlock
    | FormBlock,
    Field(discriminator="type"),
]


class Column(_Model):
    blocks: list[LeafBlock] = Field(default_factory=list, max_length=20)


class ColumnsBlock(_Block):
    """Side-by-side columns of blocks (one level deep: no columns in columns)."""

    type: Literal["columns"]
    columns: list[Column] = Field(min_length=2, max_length=4)


Block = Annotated[LeafBlock | ColumnsBlock, Field(discriminator="type")]

# Every block's type, from the models themselves (error paths skip them).
BLOCK_TYPES = frozenset(
    get_args(model.model_fields["type"].annotation)[0]
    for model in (*get_args(get_args(LeafBlock)[0]), ColumnsBlock)
)


class Theme(_Model):
    accent: HexColor = "#4f46e5"
    mode: Literal["light", "dark"] = "light"
    font: Literal["sans", "serif", "rounded"] = "sans"


# Ids the page itself gives elements ("Skip to content" targets #main).
PAGE_IDS = frozenset({"main"})


class PageContent(_Model):
    schema_version: Annotated[Literal[1], EXACT_INT] = SCHEMA_VERSION
    theme: Theme = Field(default_factory=Theme)
    blocks: list[Block] = Field(default_factory=list, max_length=MAX_BLOCKS)


def check_block_ids(blocks: list[Any]) -> None:
    """An anchor (#signup) leads to one place: block ids are the page's,
    each used once, and none the page uses itself. Checked on what is sent
    (content written before this rule still renders and publishes)."""
    seen: set[str] = set()
    for at, block_id in _block_ids(blocks, ("blocks",)):
        if block_id in PAGE_IDS:
            raise PydanticCustomError(
                "block_id_reserved",
                "'{id}' is the page's own id (its main content); choose another",
                {"id": block_id, "at": at},
            )
        if block_id in seen:
            raise PydanticCustomError(
                "block_id_taken",
                "'{id}' is already another element's id on this page: each anchor is used once",
                {"id": block_id, "at": at},
            )
        seen.add(block_id)


def _block_ids(
    blocks: list[Any], loc: tuple[str | int, ...]
) -> list[tuple[tuple[str | int, ...], str]]:
    """(where, id) of every block with an id, nested columns included, and
    of every element with one in an HTML block (kept by its cleaning)."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    for i, block in enumerate(blocks):
        if getattr(block, "id", None):
            found.append(((*loc, i, "id"), block.id))
        if isinstance(block, HtmlBlock):
            found.extend(((*loc, i, "html"), inner) for inner in _HTML_IDS.findall(block.html))
        if not isinstance(block, ColumnsBlock):
            continue
        for c, column in enumerate(block.columns):
            found.extend(_block_ids(column.blocks, (*loc, i, "columns", c, "blocks")))
    return found


# The ids in cleaned HTML: nh3 writes every attribute as name="value".
_HTML_IDS = re.compile(r'<[^>]*\sid="([^"]*)"')


PAGE_CONTENT = TypeAdapter(PageContent)


def block_json_schema() -> dict[str, Any]:
    schema = PAGE_CONTENT.json_schema()
    schema["$id"] = f"https://landform.dev/schemas/page-content/v{SCHEMA_VERSION}.json"
    schema["title"] = "Landform page content"
    return schema
