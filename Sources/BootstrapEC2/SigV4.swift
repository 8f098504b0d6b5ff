import BootstrapCore
import Crypto
import Foundation

/// AWS Signature Version 4 (the `AWS4-HMAC-SHA256` scheme): canonical request, string to sign, signing key and
/// `Authorization` header, as AWS's "Signature Version 4 signing process" describes them. Pure: the caller gives
/// every header to sign (including `Host` and `X-Amz-Date`); `sign` adds the date and session token for a request.
public enum SigV4 {
    public static let algorithm = "AWS4-HMAC-SHA256"

    /// A request as it is signed: the path not yet percent-encoded, query parameters and headers in any order.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [QueryItem]
        public var headers: [Header]
        public var body: Data

        public init(method: String, path: String = "/", query: [QueryItem] = [], headers: [Header], body: Data = Data()) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.body = body
        }
    }

    public struct QueryItem: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) { self.name = name; self.value = value }
    }

    public struct Header: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) { self.name = name; self.value = value }
    }

    /// Everything the signature is made of, for tests and for debugging a `SignatureDoesNotMatch`.
    public struct Signature: Sendable {
        public var canonicalRequest: String
        public var stringToSign: String
        public var signedHeaders: String
        public var signature: String
        public var authorization: String
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`), in UTF-8, with
    /// upper-case hex digits, as SigV4 wants for query names and values and for path segments.
    public static func uriEncode(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// The query string as signed: each name and value encoded, sorted by name, then value.
    public static func canonicalQuery(_ items: [QueryItem]) -> String {
        items.map { (uriEncode($0.name), uriEncode($0.value)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// Header names lower-cased and sorted; values trimmed, runs of spaces collapsed, repeated headers joined
    /// with commas in the order given.
    static func canonicalHeaders(_ headers: [Header]) -> (canonical: String, signed: String) {
        var merged: [String: [String]] = [:]
        for h in headers {
            let value = h.value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
                .trimmingCharacters(in: .whitespaces)
            merged[h.name.lowercased(), default: []].append(value)
        }
        let names = merged.keys.sorted()
        let canonical = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        return (canonical, names.joined(separator: ";"))
    }

    static func canonicalPath(_ path: String) -> String {
        let p = path.isEmpty ? "/" : path
        return p.split(separator: "/", omittingEmptySubsequences: false).map { uriEncode(String($0)) }
            .joined(separator: "/")
    }

    public static func hexSHA256(_ data: some DataProtocol) -> String { hex(SHA256.hash(data: data)) }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// The key derived from the secret for one day, region and service.
    public static func signingKey(secret: Secret, date: String, region: String, service: String) -> SymmetricKey {
        var key = SymmetricKey(data: Data(("AWS4" + secret.revealed).utf8))
        for part in [date, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return key
    }

    /// Signs `request` as it is (its headers must include `Host` and `X-Amz-Date`, whose value gives the time).
    public static func signature(for request: Request, accessKeyId: String, secret: Secret, region: String,
                                 service: String) throws -> Signature {
        guard let amzDate = request.headers.first(where: { $0.name.lowercased() == "x-amz-date" })?.value,
              amzDate.count == 16 else {
            throw SigV4Error.missingDate
        }
        let day = String(amzDate.prefix(8))
        let (headers, signed) = canonicalHeaders(request.headers)
        let creq = [request.method.uppercased(), canonicalPath(request.path), canonicalQuery(request.query),
                    headers, signed, hexSHA256(request.body)].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let sts = [algorithm, amzDate, scope, hexSHA256(Data(creq.utf8))].joined(separator: "\n")
        let key = signingKey(secret: secret, date: day, region: region, service: service)
        let sig = hex(HMAC<SHA256>.authenticationCode(for: Data(sts.utf8), using: key))
        let authorization = "\(algorithm) Credential=\(accessKeyId)/\(scope), SignedHeaders=\(signed), Signature=\(sig)"
        return Signature(canonicalRequest: creq, stringToSign: sts, signedHeaders: signed, signature: sig,
                         authorization: authorization)
    }

    /// `20150830T123600Z` for a moment.
    public static func amzDate(_ date: Date) -> String {
        let c = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    /// Adds `X-Amz-Date` (from `date`) and, for temporary credentials, `X-Amz-Security-Token` (signed, as EC2
    /// wants it), then returns the request's headers with `Authorization` added.
    public static func sign(_ request: Request, credentials: AWSCredentials, region: String, service: String,
                            date: Date) throws -> [Header] {
        var request = request
        request.headers.removeAll {
            ["x-amz-date", "x-amz-security-token", "authorization"].contains($0.name.lowercased())
        }
        request.headers.append(Header("X-Amz-Date", amzDate(date)))
        if let token = credentials.sessionToken {
            request.headers.append(Header("X-Amz-Security-Token", token.revealed))
        }
        let s = try signature(for: request, accessKeyId: credentials.accessKeyId,
                              secret: credentials.secretAccessKey, region: region, service: service)
        return request.headers + [Header("Authorization", s.authorization)]
    }
}

public enum SigV4Error: Error, CustomStringConvertible {
    case missingDate
    public var description: String { "SigV4: the request has no X-Amz-Date header (yyyyMMddTHHmmssZ) to sign" }
}
