"""The service's own code: routes, views, readiness checks. Yours: `copier update` never
changes the files of this app once they exist."""
