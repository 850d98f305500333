"""The patch series over time: rebase, forecast, new release line, export, import, reorder."""
