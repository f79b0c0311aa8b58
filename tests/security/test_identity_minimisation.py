"""What a tenant may learn of an identity that belongs elsewhere (docs/identity.md, "Security events")."""

from accounts.security import identity_origin, identity_ref


def test_origin_names_no_other_tenant() -> None:
    assert identity_origin(claimed_tenant="acme", here="acme") == "this organisation"
    assert identity_origin(claimed_tenant="globex", here="acme") == "another organisation"
    assert identity_origin(claimed_tenant="public", here="acme") == "the platform"
    assert identity_origin(claimed_tenant="", here="acme") == "no organisation"


def test_identity_ref_is_stable_within_a_tenant_and_unrelated_across_tenants() -> None:
    source = "http://idp.test/o|c8e1b3f4-globex-carol"
    on_acme = identity_ref(here="acme", source=source)
    assert on_acme == identity_ref(here="acme", source=source)
    assert on_acme != identity_ref(here="initech", source=source)
    assert on_acme != identity_ref(here="acme", source=source + "x")
    assert len(on_acme) == 16 and "carol" not in on_acme
