import Testing

@testable import Skipper

/// How a runner splits its next claim between the fast claim and the limited one.
@Suite struct QueueControlsTests {
    @Test func onlyLimitedQueuesAndKindsTakeTheLimitedClaim() {
        var controls = QueueControls()
        let queues = ["a", "b", "c"]
        let kinds = ["mail", "noop", "report"]
        // Nothing controlled: one fast claim for everything.
        var plan = controls.plan(queues: queues, kinds: kinds)
        #expect(plan.fast.queues == queues && plan.fast.kinds == kinds && plan.limited.isEmpty)
        // A paused queue is left out; a limited queue is claimed limited, with every kind.
        controls.paused = ["a"]
        controls.limited = ["b"]
        plan = controls.plan(queues: queues, kinds: kinds)
        #expect(plan.fast.queues == ["c"] && plan.fast.kinds == kinds)
        #expect(plan.limited.map(\.queue) == ["b"] && plan.limited.map(\.kinds) == [kinds])
        // A limited kind: the other kinds stay on the fast claim; the limited one is claimed limited in every open queue.
        controls.limited = []
        controls.limitedKinds = ["report"]
        plan = controls.plan(queues: queues, kinds: kinds)
        #expect(plan.fast.queues == ["b", "c"] && plan.fast.kinds == ["mail", "noop"])
        #expect(plan.limited.map(\.queue) == ["b", "c"] && plan.limited.map(\.kinds) == [["report"], ["report"]])
        #expect(controls.isLimited(queue: "c", kind: "report") && !controls.isLimited(queue: "c", kind: "mail"))
    }
}
