import BootstrapCore
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
}
