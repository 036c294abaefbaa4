import Foundation
import Hummingbird
import Logging
import Skipper

/// skipper-api: REST over the queue. It inserts jobs and reads state; it never runs a job.
@main
struct App {
    static func main() async throws {
        ProcessSetup.prepare()
        // `skipper-api openapi`: print the OpenAPI document of this build and exit (`make openapi`).
        if CommandLine.arguments.dropFirst() == ["openapi"] {
            do {
                print(try openAPIDocument().yaml, terminator: "")
                return
            } catch {
                exitProcess(1, message: "skipper-api openapi: \(error)")
            }
        }
        let config: SkipperConfig
        do {
            config = try SkipperConfig()
        } catch {
            exitProcess(1, message: "skipper-api: \(error)")
        }
        config.logFormat.bootstrap(level: config.logLevel)
        var logger = Logger(label: "skipper.api")
        logger.logLevel = config.logLevel
        if config.apiTokens.isEmpty {
            logger.warning(
                config.authenticationDisabled
                    ? "API_AUTH=none: no authentication here; whatever is in front of the API must authenticate"
                    : "API_TOKENS is unset: no authentication, so the server serves loopback only",
                metadata: ["http.host": "\(config.host)"])
        }
        let app = try await buildApplication(config: config, logger: logger)
        // Requests in flight get 30 s after SIGTERM (a client trickling a body held the process for minutes).
        ShutdownGuard.install(logger: logger, limit: .seconds(30))
        try await app.runService()
    }
}
