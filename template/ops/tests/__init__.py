"""Tests of the template-managed plumbing (managed: `copier update` keeps them current)."""
