import BootstrapCore

extension StateStore: StatePersisting {
    public func persist(_ state: ClusterState) throws -> ClusterState { try write(state) }
}
