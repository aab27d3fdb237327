"""The email itself: HTML for mail clients (tables, inline CSS, no scripts, no images)
and a plain-text part, plus the List-Unsubscribe headers of RFC 2369 / RFC 8058.

Rendering is deterministic: the same content and recipient give the same bytes,
which is what lets the preview endpoint show exactly what is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2

from lytics.digests.content import DigestContent
from lytics.metrics.tiles import Tile

UP = "#0a7f3f"
DOWN = "#b42318"
FLAT = "#667085"

HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>{{ subject }}</title>
</head>
<body style="margin:0;padding:0;background-color:#f2f4f7;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background-color:#f2f4f7;">
<tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style="width:100%;max-width:600px;background-color:#ffffff;border-radius:8px;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#101828;">
<tr><td style="padding:24px 24px 8px 24px;">
<p style="margin:0;font-size:13px;color:#667085;">{{ week_label }}</p>
<h1 style="margin:4px 0 0 0;font-size:22px;line-height:28px;color:#101828;">{{ project_name }}: your week in numbers</h1>
</td></tr>
<tr><td style="padding:16px 24px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse;">
{% for row in tile_rows %}<tr>
{% for tile in row %}<td width="33%" valign="top" style="padding:8px;border:1px solid #eaecf0;">
<p style="margin:0;font-size:12px;color:#667085;">{{ tile.label }}</p>
<p style="margin:4px 0 0 0;font-size:22px;font-weight:bold;color:#101828;">{{ tile.value }}</p>
<p style="margin:2px 0 0 0;font-size:12px;color:{{ tile.color }};">{{ tile.change }}</p>
<p style="margin:2px 0 0 0;font-size:11px;color:#98a2b3;">last week {{ tile.previous }}</p>
</td>
{% endfor %}</tr>
{% endfor %}</table>
</td></tr>
{% if insights %}<tr><td style="padding:8px 24px;">
<h2 style="margin:0 0 8px 0;font-size:16px;color:#101828;">What changed</h2>
<ul style="margin:0;padding:0 0 0 18px;font-size:14px;line-height:21px;color:#344054;">
{% for line in insights %}<li style="margin:0 0 4px 0;">{{ line }}</li>
{% endfor %}</ul>
</td></tr>{% endif %}
{% if actions %}<tr><td style="padding:8px 24px;">
<h2 style="margin:0 0 8px 0;font-size:16px;color:#101828;">What to do about it</h2>
<ol style="margin:0;padding:0 0 0 18px;font-size:14px;line-height:21px;color:#344054;">
{% for line in actions %}<li style="margin:0 0 4px 0;">{{ line }}</li>
{% endfor %}</ol>
</td></tr>{% endif %}
<tr><td style="padding:16px 24px 24px 24px;border-top:1px solid #eaecf0;">
<p style="margin:0;font-size:12px;line-height:18px;color:#98a2b3;">You receive this weekly digest as a member of {{ project_name }}.
<a href="{{ unsubscribe_url }}" style="color:#667085;text-decoration:underline;">Unsubscribe</a></p>
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"""  # noqa: E501 - mail markup reads best one element per line

TEXT = """{{ project_name }}: your week in numbers
{{ week_label }}

{% for tile in tiles %}{{ tile.label }}: {{ tile.value }} ({{ tile.change }}; last week {{ tile.previous }})
{% endfor %}{% if insights %}
What changed
{% for line in insights %}- {{ line }}
{% endfor %}{% endif %}{% if actions %}
What to do about it
{% for line in actions %}{{ loop.index }}. {{ line }}
{% endfor %}{% endif %}
--
You receive this weekly digest as a member of {{ project_name }}.
Unsubscribe: {{ unsubscribe_url }}
"""  # noqa: E501

_html = jinja2.Environment(autoescape=True, keep_trailing_newline=True).from_string(HTML)
# The text part is not HTML: escaping would put &amp; into plain text.
_text_env = jinja2.Environment(autoescape=False, keep_trailing_newline=True)  # noqa: S701
_text = _text_env.from_string(TEXT)


@dataclass(frozen=True)
class Message:
    """One email, in the shape Resend's /emails takes (one element of /emails/batch)."""

    sender: str
    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]

    def payload(self) -> dict[str, Any]:
        return {
            "from": self.sender,
            "to": [self.to],
            "subject": self.subject,
            "html": self.html,
            "text": self.text,
            "headers": dict(self.headers),
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Message:
        return cls(
            payload["from"],
            payload["to"][0],
            payload["subject"],
            payload["html"],
            payload["text"],
            dict(payload.get("headers") or {}),
        )


def _format(tile: Tile, value: float | None) -> str:
    if value is None:
        return "\u2013"
    if tile.key == "bounce_rate":
        return f"{value:.0%}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _tile_view(tile: Tile) -> dict[str, str]:
    if tile.change_pct is None:
        change, color = ("new" if tile.value and not tile.previous else "no change data"), FLAT
    elif tile.change_pct == 0:
        change, color = "unchanged", FLAT
    else:
        arrow = "▲" if tile.change_pct > 0 else "▼"
        change = f"{arrow} {abs(tile.change_pct):.1f} %"
        color = UP if tile.change_pct > 0 else DOWN
    return {
        "label": tile.label,
        "value": _format(tile, tile.value),
        "previous": _format(tile, tile.previous),
        "change": change,
        "color": color,
    }


def week_label(content: DigestContent) -> str:
    start, end = content.week.start, content.week.end
    return f"Week of {start:%b} {start.day} \u2013 {end:%b} {end.day}, {end.year}"


def subject(content: DigestContent) -> str:
    return f"{content.project.name}: your weekly digest ({week_label(content)})"


def render(content: DigestContent, *, sender: str, recipient: str, unsubscribe_url: str) -> Message:
    views = [_tile_view(t) for t in content.tiles]
    context: dict[str, Any] = {
        "subject": subject(content),
        "project_name": content.project.name,
        "week_label": week_label(content),
        "tiles": views,
        "tile_rows": [views[i : i + 3] for i in range(0, len(views), 3)],
        "insights": content.insights,
        "actions": content.actions,
        "unsubscribe_url": unsubscribe_url,
    }
    return Message(
        sender=sender,
        to=recipient,
        subject=context["subject"],
        html=_html.render(context),
        text=_text.render(context),
        headers={
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            # RFC 8058: mail clients POST "List-Unsubscribe=One-Click" to the URL above.
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
