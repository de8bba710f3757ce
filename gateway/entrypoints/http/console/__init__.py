"""The console in the browser, under /console/: people (operators, probation officers,
oversight, auditors) on the same application as the members' API.

Server-rendered (Jinja2), readable without JavaScript, enhanced with htmx and Chart.js
served from the gateway itself (``static/vendor``). ``add_routes`` is the one call
``create_app`` makes.
"""

from gateway.entrypoints.http.console.routes import add_routes

__all__ = ["add_routes"]
