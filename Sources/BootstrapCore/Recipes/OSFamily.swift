/// How a host installs packages. Decided from its facts (`/etc/os-release`).
public enum OSFamily: String, Sendable, Hashable, Codable {
    case debian  // Ubuntu 22.04 / 24.04, Debian 12: apt
    case fedora  // Amazon Linux 2023: dnf

    /// The supported operating systems, `ID` → versions.
    public static let supported: [String: [String]] = [
        "ubuntu": ["22.04", "24.04"],
        "debian": ["12"],
        "amzn": ["2023"],
    ]

    public init?(osID: String) {
        switch osID {
        case "ubuntu", "debian": self = .debian
        case "amzn": self = .fedora
        default: return nil
        }
    }

    /// The package version string for a Kubernetes release in the pkgs.k8s.io repositories.
    public func kubernetesPackageVersion(_ version: String) -> String {
        switch self {
        case .debian: return "\(version)-1.1"
        case .fedora: return version
        }
    }
}
