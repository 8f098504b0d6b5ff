/// IPv4 addresses, CIDR blocks and DNS names: parsing and the overlap checks validation needs.
public struct IPv4Address: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    /// Parses dotted-quad text (`10.0.1.7`). Rejects missing octets, leading zeros, out-of-range octets.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }),
                  !(p.count > 1 && p.first == "0"), let octet = UInt32(p), octet <= 255 else { return nil }
            v = v << 8 | octet
        }
        value = v
    }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }
}

public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    public var network: IPv4Address
    public var prefix: Int

    public init(network: IPv4Address, prefix: Int) {
        self.network = network
        self.prefix = prefix
    }

    public enum ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        case malformed
        case hostBitsSet(canonical: String)

        public var description: String {
            switch self {
            case .malformed: return "is not an IPv4 CIDR block"
            case .hostBitsSet(let c): return "has bits set after the prefix (did you mean \(c)?)"
            }
        }
    }

    /// Parses `A.B.C.D/N`; the address must be the network address of the block.
    public static func parse(_ text: String) -> Result<CIDR, ParseError> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let addr = IPv4Address(String(parts[0])),
              parts[1].count <= 2, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
              let prefix = Int(parts[1]), (0...32).contains(prefix) else { return .failure(.malformed) }
        let block = CIDR(network: IPv4Address(addr.value & CIDR.mask(prefix)), prefix: prefix)
        if block.network != addr { return .failure(.hostBitsSet(canonical: block.description)) }
        return .success(block)
    }

    public init?(_ text: String) {
        guard case .success(let c) = CIDR.parse(text) else { return nil }
        self = c
    }

    static func mask(_ prefix: Int) -> UInt32 { prefix == 0 ? 0 : UInt32.max << UInt32(32 - prefix) }

    public var mask: UInt32 { CIDR.mask(prefix) }
    public var last: IPv4Address { IPv4Address(network.value | ~mask) }

    public func contains(_ address: IPv4Address) -> Bool { address.value & mask == network.value }

    public func overlaps(_ other: CIDR) -> Bool {
        let m = CIDR.mask(min(prefix, other.prefix))
        return network.value & m == other.network.value & m
    }

    public var description: String { "\(network)/\(prefix)" }
}

public enum DNSName {
    /// A DNS-1123 label: lower-case alphanumerics and `-`, starting and ending alphanumeric, at most 63.
    public static func isLabel(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard !u.isEmpty, u.count <= 63 else { return false }
        func alnum(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 48 && c <= 57) }
        guard alnum(u.first!), alnum(u.last!) else { return false }
        return u.allSatisfy { alnum($0) || $0 == 45 }
    }

    /// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
    public static func isSubdomain(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 253 else { return false }
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isLabel(String($0)) }
    }

    /// A host name a machine can be reached by: DNS labels (upper case allowed), not all-numeric at the end,
    /// so that a mistyped IPv4 address (`10.0.1`) is not taken for a name.
    public static func isHostname(_ s: String) -> Bool {
        let lower = s.lowercased()
        guard isSubdomain(lower) else { return false }
        let last = lower.split(separator: ".").last.map(String.init) ?? ""
        return !last.allSatisfy { $0.isNumber }
    }
}

/// `host` or `host:port` of an address field: what it is and whether it is valid.
public enum NetworkAddress: Sendable, Hashable {
    case ipv4(IPv4Address)
    case hostname(String)

    public init?(_ text: String) {
        if let ip = IPv4Address(text) { self = .ipv4(ip); return }
        if DNSName.isHostname(text) { self = .hostname(text); return }
        return nil
    }

    public var ipv4: IPv4Address? {
        if case .ipv4(let ip) = self { return ip }
        return nil
    }
}
