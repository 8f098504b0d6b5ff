"""etcd's quorum in the lab's registry, without a lab: a learner promoted once its etcd runs counts as a live
voter at once (etcd promotes a learner only when it is connected and in sync), whatever an earlier probe of its
peer port found while it was still starting."""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from labnode import k8s_etcd as E  # noqa: E402


def _listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


def test_a_promoted_learner_counts_at_once_even_after_a_probe_found_it_down():
    first, second = _listener(), _listener()
    url1 = "https://127.0.0.1:%d" % first.getsockname()[1]
    port2 = second.getsockname()[1]
    second.close()                       # the joining member's etcd is not up yet
    url2 = "https://127.0.0.1:%d" % port2
    st = {"resourceVersion": 1}
    E.add_member(st, "cp-1", [url1])
    E.add_member(st, "cp-2", [url2], learner=True)   # kubeadm's join: a learner, named
    assert E.has_quorum(E.members(st))               # a learner is not a voter
    assert not E.peer_alive(url2)                    # probed while it starts (the registry's replication does)
    again = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    again.bind(("127.0.0.1", port2))
    again.listen(8)
    try:
        res = E.op(st, "etcd_publish", {"name": "cp-2", "peerURL": url2})
        assert res["published"] and not E.members(st)[1]["isLearner"]
        # two voters, both running: writes go through within the second the old probe was kept
        assert E.has_quorum(E.members(st))
    finally:
        again.close()
        first.close()


def test_a_voter_that_stops_loses_quorum():
    first, second = _listener(), _listener()
    url1, url2 = ("https://127.0.0.1:%d" % s.getsockname()[1] for s in (first, second))
    st = {"resourceVersion": 1}
    E.add_member(st, "cp-1", [url1])
    E.add_member(st, "cp-2", [url2])
    assert E.has_quorum(E.members(st))
    second.close()
    E.forget_probe([url2])               # past the second a probe is kept
    assert not E.has_quorum(E.members(st))
    first.close()
