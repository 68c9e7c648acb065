"""Rendering: the report (Markdown / HTML / PDF) and its topology diagram.

- :func:`labreport.render.report.render_report` — snapshot in, report files out
- :mod:`labreport.render.context` — what each section shows (views over snapshot + analysis)
- :mod:`labreport.render.markup` — format-aware pieces for the Markdown templates
- :mod:`labreport.render.diagram` — the Graphviz (and Mermaid) topology with the traffic path
- :mod:`labreport.render.i18n` — message catalogs (templates/i18n/<lang>.yaml)
"""
