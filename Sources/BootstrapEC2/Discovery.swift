/// Which instances a set of hosts is: by tags (all must match) or by instance ids.
public struct HostSelector: Sendable, Hashable {
    public enum Match: Sendable, Hashable {
        case tags([String: String])
        case instanceIds([String])
    }

    public var role: String
    public var match: Match

    public init(role: String, tags: [String: String]) { self.role = role; self.match = .tags(tags) }
    public init(role: String, instanceIds: [String]) { self.role = role; self.match = .instanceIds(instanceIds) }

    /// The DescribeInstances call that finds this selector's instances: running ones only.
    public var filters: [EC2Filter] {
        var f = [EC2Filter("instance-state-name", ["running"])]
        if case .tags(let tags) = match {
            f += tags.sorted { $0.key < $1.key }.map { EC2Filter("tag:\($0.key)", [$0.value]) }
        }
        return f
    }

    public var instanceIds: [String] {
        if case .instanceIds(let ids) = match { return ids }
        return []
    }

    public var summary: String {
        switch match {
        case .tags(let t): return "role \(role), tags " + t.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            .joined(separator: ",")
        case .instanceIds(let ids): return "role \(role), instanceIds \(ids.joined(separator: ","))"
        }
    }
}

/// Which address bootstrap connects to over SSH.
public enum AddressChoice: String, Sendable, Hashable { case `public`, `private` }

/// A host found in EC2.
public struct ResolvedHost: Sendable, Hashable {
    /// The `Name` tag, or the instance id when there is none.
    public var name: String
    public var role: String
    public var sshAddress: String
    public var privateAddress: String
    /// The instance's public IPv4 address, if it has one (whatever `address` SSH uses).
    public var publicAddress: String?
    public var instanceId: String
    public var availabilityZone: String?
    public var instanceType: String?
    public var securityGroupIds: [String]
}

public struct HostResolution: Sendable {
    public var hosts: [ResolvedHost]
    /// Problems that stop a plan: a conflict, a duplicate name, a missing instance or address.
    public var errors: [String]
    /// Worth showing, not fatal: a tag selector that matched nothing (scaling to zero is allowed).
    public var warnings: [String]
}

public enum HostDiscovery {
    /// Turns what DescribeInstances answered for each selector into hosts. Non-running instances are ignored;
    /// an instance chosen by two selectors of different roles, two instances with one name, an instance id
    /// that is not running, and an instance without the address asked for are errors.
    public static func resolve(_ matches: [(selector: HostSelector, instances: [EC2Instance])],
                               address: AddressChoice) -> HostResolution {
        var hosts: [ResolvedHost] = []
        var roleOf: [String: (role: String, selector: String)] = [:]
        var errors: [String] = [], warnings: [String] = []
        for (selector, instances) in matches {
            let running = instances.filter { $0.state == "running" }
            switch selector.match {
            case .instanceIds(let ids):
                let found = Set(running.map(\.instanceId))
                for id in ids where !found.contains(id) {
                    errors.append("instance \(id) (\(selector.summary)) was not found or is not running")
                }
            case .tags:
                if running.isEmpty { warnings.append("no running instance matches \(selector.summary)") }
            }
            for instance in running.sorted(by: { $0.instanceId < $1.instanceId }) {
                if let seen = roleOf[instance.instanceId] {
                    if seen.role != selector.role {
                        errors.append("instance \(instance.instanceId) matches both \(seen.selector) and "
                                      + "\(selector.summary): one instance has one role")
                    }
                    continue
                }
                roleOf[instance.instanceId] = (selector.role, selector.summary)
                let name = instance.tags["Name"].flatMap { $0.isEmpty ? nil : $0 } ?? instance.instanceId
                guard let privateAddress = instance.privateIpAddress else {
                    errors.append("instance \(instance.instanceId) (\(name)) has no private address")
                    continue
                }
                let ssh: String
                switch address {
                case .private: ssh = privateAddress
                case .public:
                    guard let p = instance.publicIpAddress else {
                        errors.append("instance \(instance.instanceId) (\(name)) has no public address; "
                                      + "use address: private (through a bastion or VPN) or give it one")
                        continue
                    }
                    ssh = p
                }
                hosts.append(ResolvedHost(name: name, role: selector.role, sshAddress: ssh,
                                          privateAddress: privateAddress, publicAddress: instance.publicIpAddress,
                                          instanceId: instance.instanceId,
                                          availabilityZone: instance.availabilityZone,
                                          instanceType: instance.instanceType,
                                          securityGroupIds: instance.securityGroupIds))
            }
        }
        let byName = Dictionary(grouping: hosts, by: \.name)
        for (name, same) in byName.sorted(by: { $0.key < $1.key }) where same.count > 1 {
            let ids = same.map(\.instanceId).sorted().joined(separator: ", ")
            errors.append("\(same.count) instances are named '\(name)' (\(ids)): give each a distinct Name tag")
        }
        return HostResolution(hosts: hosts, errors: errors, warnings: warnings)
    }
}
