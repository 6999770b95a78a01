from ledger.service import Ledger
from ledger.service import app as service_app
from ledger.store.setup import APPLICATION_NAME


def test_the_composed_ledger_keeps_the_application_name_its_tables_are_named_after() -> None:
    # The library names every Application subclass after itself unless it sets ``name``.
    assert Ledger.name == APPLICATION_NAME


def test_the_ledger_is_importable_from_the_package_and_from_its_module() -> None:
    assert service_app.Ledger is Ledger
