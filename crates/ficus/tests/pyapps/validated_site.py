"""The legacy Django site wrapped in wsgiref.validate.validator, so any PEP 3333 slip by the
server (environ, wsgi.input, start_response, iteration, close) raises inside the app."""

from wsgiref.validate import validator

from legacy.wsgi import application as legacy_application

application = validator(legacy_application)
