/// The shop: what SettlementController and ShopController serve.
extension Endpoint {
    static let submitSettlement = Endpoint(
        .post, "/jobs/settlement", id: "submitSettlement", tag: "shop",
        summary: "Settle the PAID transactions of a date range per merchant per day, with a CSV of the result",
        description: "The body is the settlement job's arguments, checked as POST /jobs checks them for kind `settlement`: the same mistake gets the same error (422 INVALID_ARGS naming the field).",
        parameters: [APIParameters.traceparent, APIParameters.tracestate],
        body: RequestBody(schema: APISchemas.settlementRequest, checks: .fieldNames),
        responses: [
            .json(202, "Queued", APISchemas.settlementQueued, headers: [APIHeaders.location]),
            .error(
                422, ["INVALID_ARGS"],
                "INVALID_ARGS: the arguments fail the settlement's check (a date that is no day, to before from, more than 366 days, batch_size or parallelism out of range); the message names the field."
            ),
            APIResponses.databaseUnavailable, APIResponses.internalError,
        ])

    static let downloadSettlement = Endpoint(
        .get, "/downloads/{job_id}.csv", id: "downloadSettlement", tag: "shop",
        summary: "The settlement's CSV (merchant_id,date,gross_cents,fee_cents,net_cents,txn_count), streamed",
        parameters: [
            Parameter("job_id", in: .path, schema: .int64(1...Int64.max), description: "The settlement job's id", expected: "a job id is a positive integer")
        ],
        responses: [
            Response(
                status: 200, description: "The CSV, header first, ordered by date then merchant",
                content: [MediaType(type: "text/csv", schema: .string())],
                headers: [Header(name: "Content-Disposition", description: "attachment; filename=\"settlement-ID.csv\"", schema: .string(), required: true)]),
            .error(404, ["NOT_FOUND"], "NOT_FOUND: no such job, or the job has no file."),
            .error(409, ["NOT_READY"], "NOT_READY: the job is QUEUED or RUNNING; its file is not ready yet."),
            APIResponses.databaseUnavailable, APIResponses.internalError,
        ])

    static let placeOrder = Endpoint(
        .post, "/orders", id: "placeOrder", tag: "shop",
        summary: "Order a product; its stock is taken in the same statement, so concurrent orders never oversell",
        body: RequestBody(schema: APISchemas.newOrder),
        responses: [
            .json(200, "The order, PENDING", APISchemas.order, headers: [APIHeaders.location]),
            .error(404, ["NOT_FOUND"], "NOT_FOUND: no such product."),
            .error(409, ["OUT_OF_STOCK"], "OUT_OF_STOCK: fewer in stock than the quantity."),
            APIResponses.databaseUnavailable, APIResponses.internalError,
        ])

    static let getOrder = Endpoint(
        .get, "/orders/{id}", id: "getOrder", tag: "shop", summary: "Read an order",
        parameters: [APIParameters.orderID],
        responses: [
            .json(200, "The order", APISchemas.order),
            APIResponses.notFound, APIResponses.databaseUnavailable, APIResponses.internalError,
        ])

    static let payOrder = Endpoint(
        .post, "/orders/{id}/pay", id: "payOrder", tag: "shop",
        summary: "Mark an order PAID; in the same transaction a report.refresh job is queued (one per burst)",
        parameters: [APIParameters.orderID],
        responses: [
            .json(200, "The order, PAID", APISchemas.order),
            APIResponses.notFound,
            .error(409, ["ALREADY_PAID"], "ALREADY_PAID: the order is paid already."),
            APIResponses.databaseUnavailable, APIResponses.internalError,
        ])

    static let salesReport = Endpoint(
        .get, "/reports/sales", id: "salesReport", tag: "shop", summary: "The sales report, as the last report.refresh left it",
        responses: [
            .json(200, "The report (all zero before the first refresh)", APISchemas.salesReport),
            APIResponses.databaseUnavailable, APIResponses.internalError,
        ])
}
