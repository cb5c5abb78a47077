"""Label the paragraphs of German finance pages as editorial, promotional or navigational, and keep the
article: from text (``clean``, ``classify``) or HTML (``clean_html``, ``classify_html``).

>>> from detector import clean
>>> article = clean(open("page.txt", encoding="utf-8").read())
"""

from detector.api import Paragraph, classify, classify_html, clean, clean_html, load_model, site_memory

__all__ = ["Paragraph", "classify", "classify_html", "clean", "clean_html", "load_model", "site_memory"]
__version__ = "0.2.0"
