"""Retention, legal holds and erasure (SPEC section 11): which runs expire
(:mod:`~ledger.retention.policy`, pure), what the ledger says about every run and file
(:mod:`~ledger.retention.facts`, one scan of the events), and applying it
(:mod:`ledger.service.retention`)."""
