import { queryParameters } from '../lib/http/event';
import { json } from '../lib/http/responses';
import { merchantRoute } from '../lib/http/routes';
import { checkBillDate, reconciliationReport } from '../lib/orders/reconcile';
import { reportStore } from '../lib/runtime';

/** GET /merchant/reconciliations/{billDate}[?cursor=&limit=]: a page of the stored report of a day (404 when never run). */
export const handler = merchantRoute(async (event) => {
  const billDate = checkBillDate(event.pathParameters?.billDate, new Date());
  const report = await reconciliationReport(billDate, reportStore(), queryParameters(event, ['cursor', 'limit']));
  return report
    ? json(200, report)
    : json(404, {
        error: { code: 'NOT_RECONCILED', message: `${billDate} has not been reconciled yet; POST /merchant/reconciliations runs it` },
      });
});
