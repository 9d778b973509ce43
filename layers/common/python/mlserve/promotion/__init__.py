"""Promotion-driven redeploys: events, webhook verification, registry access over REST,
redeploy orchestration, rollback and status. No mlflow import anywhere in here."""
