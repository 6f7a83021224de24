"""What a message says: templates, their versions, rendering and the checks on them.

- `rendering`: the sandboxed Jinja2 environment, escaping of values into Markdown and text.
- `render_budget`: the time and size budget every render runs under.
- `compose`: the context a message is rendered with and the rendered subject/body/text.
- `template_store`: template versions (draft, published, history) in the database.
- `lint`: the checks a template must pass before it can be published.
- `samples`: sample leads for previews.
- `sms_encoding`: GSM-7 / UCS-2 segment counting.
- `staff_time`: times shown to staff, in the clinic's zone.
"""

from nurture.content.compose import (
    RenderedContent,
    Writer,
    clinic_view,
    context_for,
    render,
    render_record,
    unsubscribe_url,
)

__all__ = [
    "RenderedContent",
    "Writer",
    "clinic_view",
    "context_for",
    "render",
    "render_record",
    "unsubscribe_url",
]
