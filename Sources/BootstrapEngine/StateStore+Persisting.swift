import BootstrapCore

extension StateStore: StatePersisting {
    public func persist(_ state: ClusterState) async throws -> ClusterState { try await write(state) }
}
