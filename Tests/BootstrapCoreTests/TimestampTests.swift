@testable import BootstrapCore
import Foundation
import Testing

struct TimestampTests {
    /// The fast formatter writes exactly what ISO8601DateFormatter (and `.iso8601` coding) writes.
    @Test func matchesISO8601DateFormatter() {
        let reference = ISO8601DateFormatter()
        var dates: [Date] = [
            Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: -1), Date(timeIntervalSince1970: -0.5),
            Date(timeIntervalSince1970: 951_782_400),        // 2000-02-29
            Date(timeIntervalSince1970: 4_107_542_399.999),  // 2100-02-28T23:59:59.999
            Date(timeIntervalSince1970: 1_795_291_240.771), Date(timeIntervalSince1970: -2_208_988_800),  // 1900
            Date(timeIntervalSince1970: 253_402_300_799),    // 9999-12-31T23:59:59
        ]
        var rng = SystemRandomNumberGenerator()
        for i in 0..<20000 {
            dates.append(Date(timeIntervalSince1970: Double.random(in: -3e9...5e9, using: &rng)))
            // just below and at whole seconds, where the formatter rounds to the millisecond first
            let whole = Double(Int.random(in: -3_000_000_000...5_000_000_000, using: &rng))
            dates.append(Date(timeIntervalSince1970: whole - 0.0005 + Double(i % 5) * 0.00025))
        }
        for d in dates {
            #expect(Timestamp.iso8601(d) == reference.string(from: d), "\(d.timeIntervalSince1970)")
        }
    }

    @Test func fastDateParserAgreesWithTheFormatter() {
        let f = ISO8601DateFormatter()
        for t in [0.0, 951_782_400, 1_700_000_000, 1_709_164_800, 4_102_444_799, 1_234_567_890] {
            let text = f.string(from: Date(timeIntervalSince1970: t))
            #expect(Timestamp.fast(text) == Date(timeIntervalSince1970: t), "\(text)")
            #expect(Timestamp.parse(text) == Date(timeIntervalSince1970: t), "\(text)")
        }
        #expect(Timestamp.fast("2024-13-01T00:00:00Z") == nil)
        #expect(Timestamp.fast("2024-01-01T00:00:00+01:00") == nil)
    }

    /// What the fast path leaves is read by Foundation (as `ISO8601DateFormatter` read it before); nonsense is nil.
    @Test func otherFormsGoToFoundation() {
        #expect(Timestamp.parse("2024-01-01T01:00:00+01:00") == Date(timeIntervalSince1970: 1_704_067_200))
        #expect(Timestamp.parse("2024-13-01T00:00:00Z") == nil)
        #expect(Timestamp.parse("yesterday") == nil)
        #expect(Timestamp.parse("") == nil)
        for t in [0.0, -1, 1_795_291_240, 253_402_300_799] {
            let d = Date(timeIntervalSince1970: t)
            #expect(Timestamp.parse(Timestamp.iso8601(d)) == d)
        }
    }
}
