import Foundation

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds): what `ISO8601DateFormatter` and the `.iso8601` coding
/// strategies produce, without creating an ICU formatter per date. The state holds a date per finished step and
/// is written after every step, and every log line is stamped, so on 50 hosts the formatters were most of
/// bootstrap's own CPU time.
public enum Timestamp {
    public static func iso8601(_ date: Date) -> String {
        // Foundation hands ICU the time in milliseconds rounded half up; ICU then truncates to the second.
        let millis = ((date.timeIntervalSinceReferenceDate + 978_307_200) * 1000 + 0.5).rounded(.down)
        let seconds = (millis / 1000).rounded(.down)
        guard seconds.isFinite, abs(seconds) < 1e11 else { return ISO8601DateFormatter().string(from: date) }
        let total = Int(seconds)
        let days = total >= 0 ? total / 86400 : (total - 86399) / 86400
        let secs = total - days * 86400
        // Civil from days (proleptic Gregorian), after H. Hinnant.
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        guard (0...9999).contains(year) else { return ISO8601DateFormatter().string(from: date) }
        var out = [UInt8]()
        out.reserveCapacity(20)
        func put(_ v: Int, _ width: Int) {
            var digits = [UInt8](repeating: 48, count: width)
            var n = v
            for i in stride(from: width - 1, through: 0, by: -1) {
                digits[i] = UInt8(48 + n % 10)
                n /= 10
            }
            out.append(contentsOf: digits)
        }
        put(year, 4); out.append(45); put(month, 2); out.append(45); put(day, 2)
        out.append(84)
        put(secs / 3600, 2); out.append(58); put(secs % 3600 / 60, 2); out.append(58); put(secs % 60, 2)
        out.append(90)
        return String(decoding: out, as: UTF8.self)
    }
}
