"""Campaign scoring, fragment merging and stray attachment on constructed data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from anomaly.campaigns import attach_noise, merge_flagged
from anomaly.scoring import CampaignScorer, entity_scores


def _ordinary(
    rng: np.random.Generator, n: int, build: str, mail: list[float] | None = None
) -> pd.DataFrame:
    """``n`` ordinary signups: own subnets, devices and user agents, popular builds, name
    shapes and mail domains (with probabilities ``mail``, else uniform)."""
    return pd.DataFrame(
        {
            "ip_prefix24": [f"10.{i // 250}.{i % 250}.0/24" for i in range(n)],
            "ip_prefix16": [f"10.{i % 40}.0.0/16" for i in range(n)],
            "ip_asn": rng.integers(1, 60, n),
            "ua_build": rng.choice([f"{build}{i}" for i in range(6)], n),
            "user_agent": [f"ua-{i}" for i in range(n)],
            "device_id": [f"d{i}" for i in range(n)],
            "username_shape": rng.choice(["a.a", "a99", "a_a", "a9999"], n),
            "email_domain": rng.choice(["gmail.com", "web.de", "yahoo.com"], n, p=mail),
        }
    )


def _population(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """800 ordinary entities (unique values), a campaign of 120 sharing a client build and a
    subnet, and a crowd of 100 sharing only a subnet."""
    rng = np.random.default_rng(seed)
    n_bg, n_c, n_crowd = 800, 120, 100
    n = n_bg + n_c + n_crowd
    ent = _ordinary(rng, n, "Chrome/12")
    ent["display_name_shape"] = rng.choice(["Aa Aa", "Aa"], n)
    ent["email_tld"] = "com"
    ent["captcha_score"] = rng.uniform(0.5, 1.0, n)
    c = slice(n_bg, n_bg + n_c)
    ent.loc[ent.index[c], "ua_build"] = "Chrome/999.0.1"
    ent.loc[ent.index[c], "ip_prefix24"] = "203.0.113.0/24"
    ent.loc[ent.index[c], "device_id"] = [f"pool{i % 10}" for i in range(n_c)]
    ent.loc[ent.index[c], "captcha_score"] = rng.uniform(0.0, 0.2, n_c)
    crowd = slice(n_bg + n_c, n)
    ent.loc[ent.index[crowd], "ip_prefix24"] = "198.51.100.0/24"
    labels = np.full(n, -1)
    labels[c] = 0
    labels[crowd] = 1
    return ent, labels


def test_campaign_flagged_and_crowd_not() -> None:
    ent, labels = _population()
    behaviour = pd.DataFrame(
        {
            "captcha_score": ent["captcha_score"],
            "device_count": np.log1p(ent["device_id"].map(ent["device_id"].value_counts())),
        }
    )
    escore, meta = entity_scores(behaviour, random_state=0)
    assert escore.shape == (len(ent),) and "detector" in meta
    out = CampaignScorer("signups", random_state=0).score(ent, labels, escore)
    assert bool(out.loc[0, "flagged"]) is True, out.loc[0, "reason"]
    assert bool(out.loc[1, "flagged"]) is False, out.loc[1, "reason"]
    assert out.loc[0, "client"] > 0.9 and out.loc[1, "client"] < 0.3
    assert "owns 1 family" in out.loc[1, "reason"] and "no riskier" in out.loc[1, "reason"]
    again = CampaignScorer("signups", random_state=0).score(ent, labels, escore)
    pd.testing.assert_frame_equal(out, again)


def test_merge_joins_fragments_sharing_exclusive_values() -> None:
    ent = pd.DataFrame({"device_id": ["p1"] * 4 + ["p2"] * 4 + ["x"] * 4 + ["p1", "q", "r", "s"]})
    labels = np.array([0] * 4 + [1] * 4 + [2] * 4 + [3] * 4)
    # clusters 0 and 3 share the exclusive device p1; 1 and 2 share nothing with anyone
    groups = merge_flagged(
        ent, labels, np.array([0, 1, 2]), ["device_id"], candidates=np.array([3])
    )
    assert groups[0] == groups[3] == 0
    assert groups[1] == 1 and groups[2] == 2
    # a candidate never forms a campaign on its own
    only = merge_flagged(ent, labels, np.array([1]), ["device_id"], candidates=np.array([3]))
    assert 3 not in only


def test_attach_strays_through_exclusive_values_only() -> None:
    ent = pd.DataFrame(
        {
            "email_domain": ["junk.xyz"] * 9
            + ["junk.xyz", "gmail.com", "gmail.com"]
            + ["gmail.com"] * 3
        }
    )
    labels = np.array([0] * 9 + [-1, -1, -1] + [1] * 3)
    out = attach_noise(ent, labels, {0: [0]}, ["email_domain"])
    assert out[0].tolist() == [9]  # the stray on the campaign's throwaway domain; not gmail users


def test_attach_strays_in_rounds() -> None:
    # three strays share the campaign's template (5 of 8 holders: attached at once); with
    # them, the campaign holds 5 of 7 holders of the URL domain, which attaches two more
    ent = pd.DataFrame(
        {
            "subject_skeleton": ["s1"] * 5 + ["s1"] * 3 + ["other"] * 2 + ["x", "y"],
            "url_domain": ["bad.net"] * 2 + [None] * 3 + ["bad.net"] * 5 + ["ok.com"] * 2,
        }
    )
    labels = np.array([0] * 5 + [-1] * 7)
    one = attach_noise(ent, labels, {0: [0]}, ["subject_skeleton", "url_domain"], rounds=1)
    assert one[0].tolist() == [5, 6, 7]
    out = attach_noise(ent, labels, {0: [0]}, ["subject_skeleton", "url_domain"])
    assert out[0].tolist() == [5, 6, 7, 8, 9]  # never the two on ok.com


def test_sender_cluster_sharing_only_its_sending_network_is_not_flagged() -> None:
    rng = np.random.default_rng(0)
    n_bg, n_c = 800, 60
    n = n_bg + 2 * n_c
    ent = pd.DataFrame(
        {
            "sender_ip_prefix24": [f"10.{i // 250}.{i % 250}.0/24" for i in range(n)],
            "sender_ip_prefix16": [f"10.{i % 40}.0.0/16" for i in range(n)],
            "x_mailer": rng.choice(["m1", "m2", "m3"], n),
            "sender_domain": [f"d{i}.com" for i in range(n)],
            "sender_local_shape": rng.choice(["a", "a.a", "a99"], n),
            "sender_tld": "com",
            "subject_skeleton": [f"subject {i}" for i in range(n)],
            "url_domain": [f"u{i}.com" for i in range(n)],
            "url_tld": "com",
        }
    )
    esp = slice(n_bg, n_bg + n_c)  # shops on one ESP's addresses, each its own mail
    ent.loc[ent.index[esp], "sender_ip_prefix24"] = "54.240.8.0/24"
    spam = slice(n_bg + n_c, n)  # one template from one network
    ent.loc[ent.index[spam], "sender_ip_prefix24"] = "203.0.113.0/24"
    ent.loc[ent.index[spam], "subject_skeleton"] = "your parcel # is waiting"
    labels = np.r_[np.full(n_bg, -1), np.zeros(n_c, int), np.ones(n_c, int)]
    escore = np.r_[rng.uniform(0, 0.5, n_bg), np.full(2 * n_c, 2.0)]
    out = CampaignScorer("senders", random_state=0).score(ent, labels, escore)
    assert bool(out.loc[1, "flagged"]) is True, out.loc[1, "reason"]
    assert bool(out.loc[0, "flagged"]) is False, out.loc[0, "reason"]
    assert "needs another family" in out.loc[0, "reason"]
    # the same shops sharing their order templates too, each linking to its own site: still
    # brand mail, not a campaign
    shops = ent.index[esp]
    ent.loc[shops, "subject_skeleton"] = "your order # has shipped"
    ent.loc[shops, "url_domain"] = ["www." + d for d in ent.loc[shops, "sender_domain"]]
    out = CampaignScorer("senders", random_state=0).score(ent, labels, escore)
    assert out.loc[0, "content"] >= 0.3
    assert bool(out.loc[0, "flagged"]) is False, out.loc[0, "reason"]
    assert bool(out.loc[1, "flagged"]) is True, out.loc[1, "reason"]


def test_merge_counts_shared_pool_values_together() -> None:
    # two fragments of one farm on a pool of 40 devices: no single device covers 5% of the
    # larger fragment, together they cover most of both
    pool = [f"p{i % 40}" for i in range(800)]
    ent = pd.DataFrame({"device_id": pool[:600] + pool[600:] + [f"own{i}" for i in range(300)]})
    labels = np.array([0] * 600 + [1] * 200 + [2] * 300)
    groups = merge_flagged(ent, labels, np.array([0, 1, 2]), ["device_id"])
    assert groups[0] == groups[1] == 0 and groups[2] == 2


def test_bystander_joined_through_one_family_is_not_flagged_with_the_group() -> None:
    """A carrier's users share CGNAT subnets with a phone farm split in two fragments: the
    three clusters are judged as one group, flagged on the farm's device pool and subnets, but
    only the farm's fragments hold the pool; the carrier's cluster is detached, and does not
    join the farm's campaign afterwards."""
    rng = np.random.default_rng(1)
    n_bg, n_frag, n_crowd = 800, 60, 100
    n = n_bg + 2 * n_frag + n_crowd
    ent = pd.DataFrame(
        {
            "ip_prefix24": [f"10.{i // 250}.{i % 250}.0/24" for i in range(n)],
            "ip_prefix16": [f"10.{i % 40}.0.0/16" for i in range(n)],
            "ip_asn": rng.integers(1, 60, n),
            "ua_build": rng.choice([f"Chrome/12{i}" for i in range(6)], n),
            "user_agent": [f"ua-{i}" for i in range(n)],
            "device_id": [f"d{i}" for i in range(n)],
            "username_shape": rng.choice(["a.a", "a99", "a_a", "a9999"], n),
            "email_domain": rng.choice(["gmail.com", "web.de", "yahoo.com"], n),
        }
    )
    farm = ent.index[n_bg : n_bg + 2 * n_frag]
    crowd = ent.index[n_bg + 2 * n_frag :]
    ent.loc[farm, "device_id"] = [f"pool{i % 10}" for i in range(2 * n_frag)]
    ent.loc[farm, "ip_prefix24"] = [f"100.64.{i % 4}.0/24" for i in range(2 * n_frag)]
    ent.loc[crowd, "ip_prefix24"] = [f"100.64.{i % 4}.0/24" for i in range(n_crowd)]
    labels = np.r_[np.full(n_bg, -1), np.zeros(n_frag, int), np.ones(n_frag, int)]
    labels = np.r_[labels, np.full(n_crowd, 2)]
    escore = np.r_[rng.uniform(0, 1, n_bg), np.full(2 * n_frag, 3.0), rng.uniform(0, 1, n_crowd)]
    out = CampaignScorer("signups", random_state=0).score(ent, labels, escore)
    assert out["group"].nunique() == 1, out[["group", "reason"]]
    assert out.loc[[0, 1], "flagged"].all(), out.loc[[0, 1], "reason"]
    assert not out.loc[[0, 1], "detached"].any()
    assert bool(out.loc[2, "flagged"]) is False and bool(out.loc[2, "detached"]) is True
    assert "holds its owned values in 1 of the 2 families" in out.loc[2, "reason"]
    flagged = out.index[out["flagged"]].to_numpy()
    partial = out.index[~out["flagged"] & ~out["detached"]].to_numpy()
    group_of = merge_flagged(ent, labels, flagged, ["device_id", "ip_prefix24"], candidates=partial)
    assert 2 not in group_of and group_of[0] == group_of[1] == 0


def _scattered_actor(seed: int = 2) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """800 ordinary entities, and an actor of 120 (four hosting subnets, two old browser
    builds, throwaway names) of which HDBSCAN placed 40 in a cluster and left 80 as noise; a
    carrier crowd of 100 clustered on its NAT subnet, with 300 of the carrier's users in noise
    on the same subnet and on gmail.com as often as everyone else."""
    rng = np.random.default_rng(seed)
    n_bg, n_actor, n_crowd, n_carrier = 800, 120, 100, 300
    n = n_bg + n_actor + n_crowd + n_carrier
    ent = _ordinary(rng, n, "Chrome/13", mail=[0.6, 0.2, 0.2])
    actor = ent.index[n_bg : n_bg + n_actor]
    ent.loc[actor, "ip_prefix24"] = [f"51.15.{i % 4}.0/24" for i in range(n_actor)]
    ent.loc[actor, "ua_build"] = [f"Chrome/10{i % 2}.0" for i in range(n_actor)]
    ent.loc[actor, "email_domain"] = [f"x{i}.top" for i in range(n_actor)]
    carrier = ent.index[n_bg + n_actor :]
    ent.loc[carrier, "ip_prefix24"] = "100.64.7.0/24"
    labels = np.full(n, -1)
    labels[n_bg : n_bg + 40] = 0  # the placed third of the actor
    labels[n_bg + n_actor : n_bg + n_actor + n_crowd] = 1  # the carrier's clustered crowd
    escore = rng.uniform(0, 1, n)
    escore[n_bg : n_bg + n_actor] += 2.0  # the actor's members are riskier than the night
    return ent, labels, escore


def test_an_actor_mostly_in_noise_owns_its_values_through_its_strays() -> None:
    """The placed third holds a third of its subnets' and builds' holders (a slice, by
    holders alone); its 80 unplaced entities hold its subnets *with* its builds, far beyond
    the rate of the noise, so they count as its members: it owns network and client. Only a
    risky cluster gains strays: the same cluster with ordinary members gains none."""
    ent, labels, escore = _scattered_actor()
    scorer = CampaignScorer("signups", random_state=0)
    out = scorer.score(ent, labels, escore)
    assert bool(out.loc[0, "flagged"]) is True, out.loc[0, "reason"]
    assert "counting 80 noise entities" in out.loc[0, "reason"], out.loc[0, "reason"]
    assert scorer.strays_ is not None
    assert (scorer.strays_[800:920] == np.r_[np.full(40, -1), np.zeros(80, int)]).all()
    calm = np.random.default_rng(3).uniform(0, 1, len(ent))
    plain = CampaignScorer("signups", random_state=0)
    out = plain.score(ent, labels, calm)
    assert plain.strays_ is not None and (plain.strays_ == -1).all()
    assert bool(out.loc[0, "flagged"]) is False, out.loc[0, "reason"]


def test_ordinary_noise_on_a_crowds_subnet_and_popular_domain_is_no_stray() -> None:
    """The carrier's 300 unplaced users hold the crowd's NAT subnet and gmail.com, but no
    more often than the noise holds gmail.com: not strays, and the crowd is not flagged."""
    ent, labels, escore = _scattered_actor()
    scorer = CampaignScorer("signups", random_state=0)
    out = scorer.score(ent, labels, escore)
    assert scorer.strays_ is not None
    assert (scorer.strays_[920 + 100 :] == -1).all()
    assert (scorer.strays_[:800] == -1).all()
    assert bool(out.loc[1, "flagged"]) is False, out.loc[1, "reason"]
    assert "noise entit" not in out.loc[1, "reason"]


def test_a_sub_crowd_tied_to_the_campaign_by_none_of_its_values_is_unsure() -> None:
    """A lure campaign's 40 senders share three subject templates and two link domains; six
    newsletter senders swept into its cluster share their own templates (all of whose holders
    are members too, so each looks like a campaign value), and two members hold nothing.
    The newsletter is a sub-crowd no campaign value ties to the rest: unsure, with the two."""
    from pipelines.job import _impurities

    rng = np.random.default_rng(4)
    n_bg, n_lure, n_news = 500, 40, 6
    n = n_bg + n_lure + n_news + 2
    ent = pd.DataFrame(
        {
            "subject_skeleton": [f"hello {i}" for i in range(n)],
            "url_domain": [f"site{i}.com" for i in range(n)],
            "sender_domain": rng.choice(["gmail.com", "outlook.com"], n),
        },
        index=pd.Index([f"s{i}@x" for i in range(n)], name="sender"),
    )
    lure = ent.index[n_bg : n_bg + n_lure]
    news = ent.index[n_bg + n_lure : n_bg + n_lure + n_news]
    ent.loc[lure, "subject_skeleton"] = [f"verify account {i % 3}" for i in range(n_lure)]
    ent.loc[lure, "url_domain"] = [f"login-{i % 2}.top" for i in range(n_lure)]
    ent.loc[news, "subject_skeleton"] = [f"weekly digest {i % 2}" for i in range(n_news)]
    campaigns = pd.DataFrame({"campaign_id": ["se-1"], "flagged": [True]})
    members = {"se-1": ent.index[n_bg:].to_numpy()}
    unsure = _impurities("senders", ent, campaigns, members)
    assert sorted(unsure["se-1"]) == sorted([*news, *ent.index[-2:]])


def test_a_short_list_of_display_names_is_identity_a_blank_name_is_not() -> None:
    # 150 accounts behind a carrier's NAT that ordinary users share too, with nine display
    # names between them: the names are theirs alone. 150 others left the name blank (an
    # empty string, where the rest of the night has none at all): a blank is no value anyone
    # shares on purpose, so it makes no crowd.
    rng = np.random.default_rng(5)
    n_bg, n_c = 900, 150
    n = n_bg + 2 * n_c
    ent = _ordinary(rng, n, "Chrome/12")
    ent["display_name_shape"] = pd.Series([pd.NA] * n, dtype="string")
    ent["display_name"] = [f"person {i}" if i % 3 else None for i in range(n)]
    names = slice(n_bg, n_bg + n_c)
    blank = slice(n_bg + n_c, n)
    ent.loc[ent.index[names], "display_name"] = [f"name {i % 9}" for i in range(n_c)]
    ent.loc[ent.index[blank], "display_name"] = ""
    nat = [f"100.64.{i % 3}.0/24" for i in range(n)]
    ent.loc[ent.index[: 2 * n_c], "ip_prefix24"] = nat[: 2 * n_c]
    ent.loc[ent.index[names], "ip_prefix24"] = nat[:n_c]
    labels = np.full(n, -1)
    labels[names] = 0
    labels[blank] = 1
    out = CampaignScorer("signups", random_state=0).score(ent, labels, np.zeros(n))
    assert out.loc[0, "identity"] >= 0.9, out.loc[0, "reason"]
    assert out.loc[0, "network"] < 0.5, out.loc[0, "reason"]
    assert out.loc[1, "identity"] < 0.5, out.loc[1, "reason"]
    assert not bool(out.loc[1, "flagged"]), out.loc[1, "reason"]
