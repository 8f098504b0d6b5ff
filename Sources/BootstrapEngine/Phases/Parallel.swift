/// The one bounded-parallel helper: `body` over `items`, at most `limit` at once, results in the order of
/// `items`. Connecting, reading facts and preflight go through it; the step graph has its own scheduler
/// (dependencies, cancellation).
enum Parallel {
    static func map<Item: Sendable, Result: Sendable>(_ items: [Item], limit: Int,
                                                      _ body: @escaping @Sendable (Item) async -> Result) async
        -> [Result]
    {
        var out = [Result?](repeating: nil, count: items.count)
        await withTaskGroup(of: (Int, Result).self) { group in
            var next = 0
            func startNext() {
                guard next < items.count else { return }
                let i = next
                next += 1
                group.addTask { (i, await body(items[i])) }
            }
            for _ in 0..<max(1, limit) { startNext() }
            while let (i, result) = await group.next() {
                out[i] = result
                startNext()
            }
        }
        return out.map { $0! }
    }
}
