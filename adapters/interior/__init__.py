"""The interior ministry (МВД): identity, special records, pre-trial cases, registered residence."""
