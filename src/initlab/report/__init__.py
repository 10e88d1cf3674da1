"""Reports: one design for every HTML page and notebook display.

- :mod:`initlab.report.html`: ``HtmlReport`` (verdict, findings, figures, folded tables,
  Reproduce command; self-contained, fits 1280 px);
- :mod:`initlab.report.palette`: one colour-blind-safe colour and marker per init;
- :mod:`initlab.report.figures`: layer x init heatmaps, curves, histograms on shared axes;
- the doctor's page is :func:`initlab.diagnostics.html.write_doctor_html` (it sits above this layer);
- :mod:`initlab.report.notebook`: what ``_repr_html_`` of initlab's results returns.
"""
