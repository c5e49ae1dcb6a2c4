"""kpi-red: drain the red KPI backlog of cabinet leads with neither identity link nor claim."""

__version__ = "0.1.0"
