"""The rules the API and the pipeline share, in one place both call: what a run is made of and when one may start
or be retried (runs), what each reader may see of a run's review and when it is complete (reviews), which verdicts
carry to a later run (carry), what a project's codebook is and which prompt version a run uses (specs), and what a
dataset and its export say (dataset). Below this layer, storage/repositories holds the queries; above it, the
pipeline's stages and the API's services."""
