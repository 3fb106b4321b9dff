"""How every form of the app renders its fields: one template, templates/forms/field.html.

A form's rules (required, min, step, max length, help text, choices) live in its class;
templates render a field with `{{ form.field.as_field_group }}` and never restate them."""

from django.forms.renderers import TemplatesSetting


class FormRenderer(TemplatesSetting):
    """Django's widgets, found through TEMPLATES (so templates/ can hold the field
    template), with the project's field template for `as_field_group` and `{{ form }}`."""

    field_template_name = "forms/field.html"
