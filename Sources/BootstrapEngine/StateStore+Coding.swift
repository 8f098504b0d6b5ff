import BootstrapCore
import Foundation

extension StateStore {
    /// Decodes state bytes, checking the format version before anything else.
    public static func decode(_ data: Data, path: String) throws -> ClusterState {
        struct Probe: Decodable { var formatVersion: Int? }
        let probe: Probe
        do { probe = try JSONDecoder.state.decode(Probe.self, from: data) } catch {
            throw StateError.corrupt(path: path, detail: "not a JSON object")
        }
        guard let version = probe.formatVersion else {
            throw StateError.corrupt(path: path, detail: "no formatVersion")
        }
        if version > ClusterState.currentFormatVersion {
            throw StateError.newerFormat(path: path, found: version, supported: ClusterState.currentFormatVersion)
        }
        do {
            return try JSONDecoder.state.decode(ClusterState.self, from: data)
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw StateError.corrupt(path: path, detail: "missing \(codingPath(ctx.codingPath + [key]))")
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx),
                let DecodingError.dataCorrupted(ctx) {
            throw StateError.corrupt(path: path, detail: "bad value at \(codingPath(ctx.codingPath))")
        } catch {
            throw StateError.corrupt(path: path, detail: "\(error)")
        }
    }

    static func codingPath(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: ["."])
    }
}

extension JSONEncoder {
    /// How state is written: sorted keys (stable diffs), ISO 8601 dates.
    static var state: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // What `.iso8601` writes, without an ICU formatter per date (a state holds one per finished step).
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(Timestamp.iso8601(date))
        }
        return e
    }
}

extension JSONDecoder {
    static var state: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let text = try c.decode(String.self)
            if let date = Timestamp.parse(text) { return date }
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an ISO 8601 date: \(text)")
        }
        return d
    }
}
