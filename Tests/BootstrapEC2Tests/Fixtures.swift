import BootstrapCore
import BootstrapTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import BootstrapEC2

/// Counts the requests it forwards, per action.
final class CountingTransport: HTTPTransport, @unchecked Sendable {
    let inner: any HTTPTransport
    private let lock = NSLock()
    private var actions: [String] = []

    init(_ inner: any HTTPTransport = URLSessionTransport()) { self.inner = inner }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let body = String(decoding: request.body, as: UTF8.self)
        let action = body.split(separator: "&").first { $0.hasPrefix("Action=") }.map { String($0.dropFirst(7)) } ?? "?"
        lock.withLock { actions.append(action) }
        return try await inner.send(request)
    }

    func count(_ action: String) -> Int { lock.withLock { actions.filter { $0 == action }.count } }
}

/// Answers from a list, in order (the last one repeats), recording the requests.
final class CannedTransport: HTTPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var answers: [HTTPResponse]
    private(set) var requests: [HTTPRequest] = []

    init(_ answers: [(Int, String)]) { self.answers = answers.map { HTTPResponse(status: $0.0, body: Data($0.1.utf8)) } }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        lock.withLock {
            requests.append(request)
            return answers.count > 1 ? answers.removeFirst() : answers[0]
        }
    }

    var count: Int { lock.withLock { requests.count } }
}

let testCredentials = AWSCredentials(accessKeyId: "AKIATESTING", secretAccessKey: Secret("test-secret-value-0123456789"),
                                     source: "test")

/// Setting up the emulator's world through the same API client.
extension EC2Client {
    func createVPC(_ cidr: String) async throws -> String {
        let r = try await call("CreateVpc", [.init("CidrBlock", cidr)])
        guard let id = r.child("vpc")?.value("vpcId") else { throw FixtureError(description: "CreateVpc: no vpcId") }
        return id
    }

    func createSubnet(vpc: String, cidr: String) async throws -> String {
        let r = try await call("CreateSubnet", [.init("VpcId", vpc), .init("CidrBlock", cidr),
                                                .init("AvailabilityZone", "\(region)a")])
        guard let id = r.child("subnet")?.value("subnetId") else { throw FixtureError(description: "CreateSubnet") }
        return id
    }

    func createSecurityGroup(vpc: String, name: String) async throws -> String {
        let r = try await call("CreateSecurityGroup", [.init("VpcId", vpc), .init("GroupName", name),
                                                       .init("GroupDescription", "test \(name)")])
        guard let id = r.value("groupId") else { throw FixtureError(description: "CreateSecurityGroup") }
        return id
    }

    /// Runs `count` instances with the tags, in the subnet and groups; returns their ids.
    func runInstances(count: Int = 1, subnet: String, groups: [String], tags: [String: String],
                      privateIp: String? = nil, type: String = "t3.medium") async throws -> [String] {
        var p: [SigV4.QueryItem] = [.init("ImageId", "ami-12c6146b"), .init("MinCount", String(count)),
                                    .init("MaxCount", String(count)), .init("SubnetId", subnet),
                                    .init("InstanceType", type)]
        for (i, g) in groups.enumerated() { p.append(.init("SecurityGroupId.\(i + 1)", g)) }
        if let privateIp { p.append(.init("PrivateIpAddress", privateIp)) }
        p.append(.init("TagSpecification.1.ResourceType", "instance"))
        for (i, (k, v)) in tags.sorted(by: { $0.key < $1.key }).enumerated() {
            p.append(.init("TagSpecification.1.Tag.\(i + 1).Key", k))
            p.append(.init("TagSpecification.1.Tag.\(i + 1).Value", v))
        }
        let r = try await call("RunInstances", p)
        return r.items("instancesSet").compactMap { $0.value("instanceId") }
    }

    func stopInstances(_ ids: [String]) async throws {
        _ = try await call("StopInstances", ids.enumerated().map { .init("InstanceId.\($0.offset + 1)", $0.element) })
    }
}

extension EC2Client {
    /// Instances launched in the subnet get a public address (moto picks one at random).
    func mapPublicIpOnLaunch(subnet: String) async throws {
        _ = try await call("ModifySubnetAttribute", [.init("SubnetId", subnet), .init("MapPublicIpOnLaunch.Value", "true")])
    }
}
