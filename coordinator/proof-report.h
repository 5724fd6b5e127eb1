/* The files of a proof an operator hands to the customer: a Markdown report
 * (per account: verdict, folders with counts on both sides, each difference
 * named per message) and a CSV of every difference. */
#ifndef MAILSHIFT_PROOF_REPORT_H
#define MAILSHIFT_PROOF_REPORT_H

#include <jansson.h>
#include <stddef.h>

/* Writes proof-migration-M.md and proof-migration-M.csv into dir (created
 * if missing) from inspect_proof's JSON.  0, or -1 with err. */
int proof_report_write(const json_t *proof, const char *dir, char *err, size_t errlen);

#endif
