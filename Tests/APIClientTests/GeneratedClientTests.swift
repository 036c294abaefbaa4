import Foundation
import OpenAPIRuntime
import Skipper
import Testing
import TestSupport

@testable import API

/// A client generated from the document (swift-openapi-generator's build plugin, from the committed copy) against a
/// live API and a real runner: what a client developer gets from GET /openapi.yaml works as the document says.
@Suite struct GeneratedClientTests {
    /// The client is generated from the committed copy; it must be the document this build serves, byte for byte
    /// (`make openapi` writes it).
    @Test func theCommittedDocumentIsTheServedOne() async throws {
        let committed = try String(contentsOf: committedDocumentURL, encoding: .utf8)
        try await withGeneratedClient { _, client in
            let served = try await client.openAPI()
            let text = try await String(collecting: try served.ok.body.yaml, upTo: 4 << 20)
            #expect(text == committed, "Tests/APIClientTests/openapi.yaml is stale: run `make openapi`")
        }
    }

    @Test func submitFollowToCompletedAndCancel() async throws {
        try await withGeneratedClient { db, client in
            let runner = try ChildProcess.runner(url: db.url, environment: ["PROGRESS_INTERVAL": "200ms"])
            defer { runner.killNow() }
            #expect(try await eventually { try await db.scalar("SELECT count(*) FROM skipper.kinds WHERE kind IN ('noop', 'sleep')") == "2" })

            // Submit a noop job, read its events to the end, and find it COMPLETED.
            let submitted = try await client.submitJob(body: .json(.init(kind: "noop", priority: 3, unique_key: "client-test")))
            let job = try submitted.accepted.body.json
            #expect(job.status == .QUEUED)
            #expect(job.queue == "default")
            #expect(job.unique_key == "client-test")
            #expect(job.priority == 3)
            #expect(try submitted.accepted.headers.Location == "/jobs/\(job.job_id)")

            let (followed, ended) = try await abandoningAfter(.seconds(30)) {
                let stream = try await client.followJob(path: .init(id: job.job_id))
                let events = try stream.ok.body.text_event_hyphen_stream.asDecodedServerSentEvents()
                var followed: [Components.Schemas.Job] = []
                var ended = false
                for try await event in events {
                    switch event.event {
                    case "job":
                        followed.append(try JSONDecoder.api.decode(Components.Schemas.Job.self, from: Data((event.data ?? "").utf8)))
                    case "end":
                        #expect(event.data == "{}")
                        ended = true
                    default:
                        Issue.record("an event the document does not describe: \(event)")
                    }
                }
                return (followed, ended)
            }
            #expect(ended)
            #expect(followed.first?.job_id == job.job_id)
            #expect(followed.last?.status == .COMPLETED)

            let read = try await client.getJob(path: .init(id: job.job_id))
            let completed = try read.ok.body.json
            #expect(completed.status == .COMPLETED)
            #expect(completed.finished_at != nil)

            // A long sleep job: cancelled while QUEUED or RUNNING, then CANCELLED.
            let sleeper = try await client.submitJob(
                body: .json(.init(kind: "sleep", args: try OpenAPIObjectContainer(unvalidatedValue: ["ms": 60_000]))))
            let sleeping = try sleeper.accepted.body.json
            #expect(try await eventually { try await client.getJob(path: .init(id: sleeping.job_id)).ok.body.json.status == .RUNNING })
            let cancel = try await client.cancelJob(path: .init(id: sleeping.job_id))
            let cancelling = try cancel.accepted.body.json
            #expect(cancelling.cancel_requested_at != nil || cancelling.status == .CANCELLED)
            #expect(try await eventually(timeout: .seconds(5)) {
                try await client.getJob(path: .init(id: sleeping.job_id)).ok.body.json.status == .CANCELLED
            })
            // Cancelling again is the documented 409.
            let again = try await client.cancelJob(path: .init(id: sleeping.job_id))
            #expect(try again.conflict.body.json.error == .JOB_FINISHED)

            // Errors decode as documented too.
            let unknown = try await client.getJob(path: .init(id: 987_654))
            #expect(try unknown.notFound.body.json.error == .NOT_FOUND)
            let invalid = try await client.submitJob(body: .json(.init(kind: "noop", priority: 40_000)))
            let message = try invalid.unprocessableContent.body.json.message
            #expect(message == "priority: must be between -32768 and 32767, not 40000")
            await runner.stop()
        }
    }
}

extension JSONDecoder {
    /// Decodes the API's JSON as the generated client does (dates in RFC 3339 with fractional seconds).
    static var api: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = parseTimestamp(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not RFC 3339: \(text)"))
            }
            return date
        }
        return decoder
    }
}
