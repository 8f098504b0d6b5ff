import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

public struct HTTPRequest: Sendable {
    public var url: URL
    public var method: String
    public var headers: [SigV4.Header]
    public var body: Data
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var body: Data
    public init(status: Int, body: Data) { self.status = status; self.body = body }
}

/// Sends one request and returns the status and body; a failure to connect throws.
///
/// The client sits behind this protocol because the choice matters for the release binary (measured with
/// `--static-swift-stdlib` on Debian 12): URLSession statically linked needs libcurl-dev to link and then
/// `libcurl.so.4` and ~30 libraries under it at run time; async-http-client keeps the binary at glibc,
/// libstdc++/libgcc_s and zlib, but adds NIO, NIOSSL and its own BoringSSL to the build (about 18 minutes
/// from scratch for a debug build on the shared 2-core machine). `XMLParser` (FoundationXML) likewise brings in
/// `libxml2.so.2` with ICU 72, zlib and liblzma. Only the tests use this module so far.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// URLSession (FoundationNetworking, libcurl underneath): its transfers run on URLSession's own threads and
/// the answer comes back through a continuation, so nothing waits on the cooperative pool.
public final class URLSessionTransport: HTTPTransport {
    private let session: URLSession

    public init(timeout: TimeInterval = 30) {
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = timeout
        config.httpShouldSetCookies = false
        config.urlCache = nil
        session = URLSession(configuration: config)
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        var r = URLRequest(url: request.url)
        r.httpMethod = request.method
        for h in request.headers where h.name.lowercased() != "host" { r.setValue(h.value, forHTTPHeaderField: h.name) }
        r.httpBody = request.body
        let (data, response) = try await session.data(for: r)
        return HTTPResponse(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data)
    }
}
