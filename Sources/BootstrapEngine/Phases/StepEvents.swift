import BootstrapCore
import Foundation

/// The one wrapper every step goes through (host steps, cluster steps, releases, objects, wait-ready,
/// removals, destroy): a start event, then a finish event with the time it took, or a fail event with the
/// error (secrets redacted, the host not named twice), rethrown.
struct StepEvents: Sendable {
    let events: EventSink
    let redactor: Redactor

    /// Runs `body` as `step` on `host`; `body` says whether it acted (false: found done, only recorded).
    func run(host: String, step: String, _ body: () async throws -> Bool) async throws {
        let clock = ContinuousClock()
        let t0 = clock.now
        events(.stepStarted(host: host, step: step))
        do {
            let ran = try await body()
            events(.stepFinished(host: host, step: step, elapsed: clock.now - t0, ran: ran))
        } catch {
            events(.stepFailed(host: host, step: step, elapsed: clock.now - t0,
                               error: redact(ErrorText.describe(error, about: host), redactor.secrets)))
            throw error
        }
    }
}
