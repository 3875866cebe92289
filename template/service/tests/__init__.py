"""The service's own tests. Yours: `copier update` never changes them."""
