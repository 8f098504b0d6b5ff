import BootstrapCore
import Foundation

/// How throttled calls are retried: up to `maxAttempts` in all, waiting a random time up to
/// `base * 2^(attempt-1)` (at most `cap`) between them ("full jitter"). `notice` hears of each retry.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var base: Duration
    public var cap: Duration
    /// Told `DescribeInstances throttled (RequestLimitExceeded, HTTP 503); retry 1 of 5 in 120ms` before each wait.
    public var notice: (@Sendable (String) -> Void)?

    public init(maxAttempts: Int = 6, base: Duration = .milliseconds(200), cap: Duration = .seconds(10),
                notice: (@Sendable (String) -> Void)? = nil) {
        self.maxAttempts = maxAttempts
        self.base = base
        self.cap = cap
        self.notice = notice
    }

    public static let standard = RetryPolicy()

    func delay(afterAttempt attempt: Int) -> Duration {
        let ceiling = min(cap, base * (1 << min(attempt - 1, 20)))
        let ms = max(1, Int(ceiling / .milliseconds(1)))
        return .milliseconds(Int.random(in: 0...ms))
    }
}

public enum EC2Error: Error, CustomStringConvertible, Sendable {
    /// `AuthFailure`, `InvalidClientTokenId`, `SignatureDoesNotMatch`, ...: the credentials were not accepted.
    case authFailure(action: String, code: String, message: String, credentials: String)
    /// `UnauthorizedOperation` (`AccessDenied` in other AWS APIs and emulators): valid credentials without the
    /// permission.
    case unauthorized(action: String, code: String, message: String, credentials: String)
    /// Still throttled (or unavailable) after every attempt.
    case throttled(action: String, code: String, attempts: Int)
    case api(action: String, code: String, message: String, status: Int)
    case transport(action: String, endpoint: String, message: String)
    case badResponse(action: String, status: Int, detail: String)

    public var action: String {
        switch self {
        case .authFailure(let a, _, _, _), .unauthorized(let a, _, _, _), .throttled(let a, _, _),
             .api(let a, _, _, _), .transport(let a, _, _), .badResponse(let a, _, _): return a
        }
    }

    public var code: String? {
        switch self {
        case .authFailure(_, let c, _, _), .unauthorized(_, let c, _, _), .throttled(_, let c, _),
             .api(_, let c, _, _): return c
        case .transport, .badResponse: return nil
        }
    }

    public var description: String {
        switch self {
        case .authFailure(let action, let code, let message, let credentials):
            return "EC2 \(action): the credentials were not accepted (\(code): \(message)); \(credentials)"
        case .unauthorized(let action, let code, let message, let credentials):
            return "EC2 \(action): not allowed: the credentials need the IAM permission ec2:\(action) "
                + "(\(code): \(message)); \(credentials)"
        case .throttled(let action, let code, let attempts):
            return "EC2 \(action): still throttled (\(code)) after \(attempts) attempts; try again later"
        case .api(let action, let code, let message, let status):
            return "EC2 \(action) failed (HTTP \(status), \(code)): \(message)"
        case .transport(let action, let endpoint, let message):
            return "EC2 \(action): cannot reach \(endpoint): \(message)"
        case .badResponse(let action, let status, let detail):
            return "EC2 \(action): unexpected answer (HTTP \(status)): \(detail)"
        }
    }
}

/// The EC2 Query API (version 2016-11-15): form-encoded POSTs signed with SigV4, XML answers.
public struct EC2Client: Sendable {
    public static let apiVersion = "2016-11-15"

    public let region: String
    public let endpoint: URL
    public let credentials: AWSCredentials
    public let transport: any HTTPTransport
    public let retry: RetryPolicy
    /// The signing name and API version: EC2's; tests point them at IAM to set up credentials in the emulator.
    var service = "ec2"
    var version = EC2Client.apiVersion

    /// `endpoint` overrides `https://ec2.REGION.amazonaws.com/` (a VPC endpoint, or an emulator in tests).
    public init(region: String, credentials: AWSCredentials, endpoint: URL? = nil,
                transport: any HTTPTransport = URLSessionTransport(), retry: RetryPolicy = .standard) {
        self.region = region
        self.credentials = credentials
        self.endpoint = endpoint ?? URL(string: "https://ec2.\(region).amazonaws.com/")!
        self.transport = transport
        self.retry = retry
    }

    static let throttlingCodes: Set<String> = [
        "RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled",
        "RequestThrottledException", "TooManyRequestsException", "ServiceUnavailable", "Unavailable",
        "InternalError", "InternalFailure",
    ]
    static let authCodes: Set<String> = [
        "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "IncompleteSignature",
        "MissingAuthenticationToken", "InvalidAccessKeyId", "ExpiredToken", "RequestExpired", "OptInRequired",
    ]

    /// The form body of a call: `Action`, `Version`, then the parameters.
    static func formBody(action: String, version: String = apiVersion, parameters: [SigV4.QueryItem]) -> Data {
        let items = [SigV4.QueryItem("Action", action), SigV4.QueryItem("Version", version)] + parameters
        return Data(items.map { "\(SigV4.uriEncode($0.name))=\(SigV4.uriEncode($0.value))" }
            .joined(separator: "&").utf8)
    }

    /// One call, retried while throttled; returns the answer's root element.
    public func call(_ action: String, _ parameters: [SigV4.QueryItem] = []) async throws -> XMLTree {
        var attempt = 0
        while true {
            attempt += 1
            let (status, body) = try await send(action, parameters)
            let root = XMLTree.parse(body)
            if (200..<300).contains(status) {
                guard let root else {
                    throw EC2Error.badResponse(action: action, status: status, detail: "not XML")
                }
                return root
            }
            let error = root.flatMap { Self.apiError(in: $0) }
            let code = error?.code ?? (status == 503 ? "ServiceUnavailable" : "HTTP \(status)")
            let message = redact(error?.message ?? String(decoding: body.prefix(300), as: UTF8.self),
                                 credentials.secrets)
            let retryable = Self.throttlingCodes.contains(code) || status == 503 || status == 429
            if retryable {
                if attempt >= retry.maxAttempts {
                    throw EC2Error.throttled(action: action, code: code, attempts: attempt)
                }
                let wait = retry.delay(afterAttempt: attempt)
                retry.notice?("\(action) throttled (\(code), HTTP \(status)); retry \(attempt) of "
                              + "\(retry.maxAttempts - 1) in \(Int(wait / .milliseconds(1)))ms")
                try await Task.sleep(for: wait)
                continue
            }
            if ["UnauthorizedOperation", "AccessDenied", "AccessDeniedException"].contains(code) {
                throw EC2Error.unauthorized(action: action, code: code, message: message,
                                            credentials: credentials.description)
            }
            if Self.authCodes.contains(code) || status == 401 {
                throw EC2Error.authFailure(action: action, code: code, message: message,
                                           credentials: credentials.description)
            }
            throw EC2Error.api(action: action, code: code, message: message, status: status)
        }
    }

    private func send(_ action: String, _ parameters: [SigV4.QueryItem]) async throws -> (Int, Data) {
        let body = Self.formBody(action: action, version: version, parameters: parameters)
        var host = endpoint.host ?? ""
        if let port = endpoint.port { host += ":\(port)" }
        let path = endpoint.path.isEmpty ? "/" : endpoint.path
        let unsigned = SigV4.Request(
            method: "POST", path: path,
            headers: [SigV4.Header("Host", host),
                      SigV4.Header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
            body: body)
        let headers = try SigV4.sign(unsigned, credentials: credentials, region: region, service: service,
                                   date: Date())
        do {
            let response = try await transport.send(HTTPRequest(url: endpoint, method: "POST", headers: headers,
                                                                body: body))
            return (response.status, response.body)
        } catch let error as CancellationError {
            throw error
        } catch {
            throw EC2Error.transport(action: action, endpoint: endpoint.absoluteString,
                                     message: redact("\(error)", credentials.secrets))
        }
    }

    /// `<Response><Errors><Error><Code>…</Code><Message>…</Message></Error></Errors>…` (also the
    /// `<ErrorResponse><Error>` shape some front ends answer with).
    static func apiError(in root: XMLTree) -> (code: String, message: String)? {
        let error = root.child("Errors")?.child("Error") ?? root.child("Error")
            ?? (root.name == "Error" ? root : nil)
        guard let error, let code = error.value("Code") else { return nil }
        return (code, error.value("Message") ?? "")
    }

    // MARK: Actions

    /// Every instance matching `filters` and `instanceIds`, following `NextToken` (`maxResults` per page; EC2
    /// does not allow it together with instance ids).
    public func describeInstances(filters: [EC2Filter] = [], instanceIds: [String] = [], maxResults: Int? = nil)
        async throws -> [EC2Instance] {
        var base: [SigV4.QueryItem] = []
        for (i, f) in filters.enumerated() {
            base.append(.init("Filter.\(i + 1).Name", f.name))
            for (j, v) in f.values.enumerated() { base.append(.init("Filter.\(i + 1).Value.\(j + 1)", v)) }
        }
        for (i, id) in instanceIds.enumerated() { base.append(.init("InstanceId.\(i + 1)", id)) }
        if let maxResults, instanceIds.isEmpty { base.append(.init("MaxResults", String(maxResults))) }
        var instances: [EC2Instance] = []
        var token: String?
        var pages = 0
        repeat {
            let root = try await call("DescribeInstances", base + (token.map { [.init("NextToken", $0)] } ?? []))
            for reservation in root.items("reservationSet") {
                for item in reservation.items("instancesSet") {
                    instances.append(Self.instance(item))
                }
            }
            token = root.value("nextToken")
            pages += 1
            if pages > 10_000 {
                throw EC2Error.badResponse(action: "DescribeInstances", status: 200, detail: "NextToken never ends")
            }
        } while token != nil
        return instances
    }

    static func instance(_ item: XMLTree) -> EC2Instance {
        var tags: [String: String] = [:]
        for t in item.items("tagSet") {
            if let k = t.value("key") { tags[k] = t.value("value") ?? "" }
        }
        return EC2Instance(
            instanceId: item.value("instanceId") ?? "",
            state: item.child("instanceState")?.value("name") ?? "unknown",
            instanceType: item.value("instanceType"),
            availabilityZone: item.child("placement")?.value("availabilityZone"),
            privateIpAddress: item.value("privateIpAddress"),
            publicIpAddress: item.value("ipAddress"),
            vpcId: item.value("vpcId"),
            subnetId: item.value("subnetId"),
            tags: tags,
            securityGroupIds: item.items("groupSet").compactMap { $0.value("groupId") })
    }

    public func describeSecurityGroups(groupIds: [String]) async throws -> [EC2SecurityGroup] {
        var params: [SigV4.QueryItem] = []
        for (i, id) in groupIds.enumerated() { params.append(.init("GroupId.\(i + 1)", id)) }
        var groups: [EC2SecurityGroup] = []
        var token: String?
        repeat {
            let root = try await call("DescribeSecurityGroups", params + (token.map { [.init("NextToken", $0)] } ?? []))
            groups += root.items("securityGroupInfo").map(Self.securityGroup)
            token = root.value("nextToken")
        } while token != nil
        return groups
    }

    static func securityGroup(_ item: XMLTree) -> EC2SecurityGroup {
        let id = item.value("groupId") ?? ""
        var rules: [IngressRule] = []
        for p in item.items("ipPermissions") {
            let proto = p.value("ipProtocol") ?? "-1"
            let from = p.value("fromPort").flatMap { Int($0) }
            let to = p.value("toPort").flatMap { Int($0) }
            for g in p.items("groups") {
                if let gid = g.value("groupId") {
                    rules.append(IngressRule(groupId: id, ipProtocol: proto, fromPort: from, toPort: to,
                                             source: .group(gid), description: g.value("description")))
                }
            }
            for r in p.items("ipRanges") {
                if let cidr = r.value("cidrIp") {
                    rules.append(IngressRule(groupId: id, ipProtocol: proto, fromPort: from, toPort: to,
                                             source: .cidr(cidr), description: r.value("description")))
                }
            }
        }
        return EC2SecurityGroup(groupId: id, groupName: item.value("groupName") ?? "", vpcId: item.value("vpcId"),
                                ingress: rules)
    }

    /// `IpPermissions.N.*` for rules on one group, one permission per rule.
    static func permissionParameters(_ rules: [IngressRule]) -> [SigV4.QueryItem] {
        var params: [SigV4.QueryItem] = []
        for (i, rule) in rules.enumerated() {
            let p = "IpPermissions.\(i + 1)"
            params.append(.init("\(p).IpProtocol", rule.ipProtocol))
            // Protocols without ports (IP in IP, all traffic) take -1, which EC2 accepts and ignores.
            params.append(.init("\(p).FromPort", String(rule.fromPort ?? -1)))
            params.append(.init("\(p).ToPort", String(rule.toPort ?? -1)))
            switch rule.source {
            case .group(let g):
                params.append(.init("\(p).Groups.1.GroupId", g))
                if let d = rule.ruleDescription { params.append(.init("\(p).Groups.1.Description", d)) }
            case .cidr(let c):
                params.append(.init("\(p).IpRanges.1.CidrIp", c))
                if let d = rule.ruleDescription { params.append(.init("\(p).IpRanges.1.Description", d)) }
            }
        }
        return params
    }

    /// Adds `rules` (with their descriptions), one call per group.
    public func authorizeIngress(_ rules: [IngressRule]) async throws {
        for (group, rules) in Dictionary(grouping: rules, by: \.groupId).sorted(by: { $0.key < $1.key }) {
            _ = try await call("AuthorizeSecurityGroupIngress",
                               [.init("GroupId", group)] + Self.permissionParameters(rules))
        }
    }

    /// Removes exactly `rules` (as DescribeSecurityGroups gave them, descriptions included), one call per group.
    public func revokeIngress(_ rules: [IngressRule]) async throws {
        for (group, rules) in Dictionary(grouping: rules, by: \.groupId).sorted(by: { $0.key < $1.key }) {
            _ = try await call("RevokeSecurityGroupIngress",
                               [.init("GroupId", group)] + Self.permissionParameters(rules))
        }
    }
}
