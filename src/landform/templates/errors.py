from landform.pages.errors import TemplateNotFound

__all__ = ["TemplateNotFound"]
