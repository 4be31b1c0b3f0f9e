"""GetAvailableModels catalogs (reference section 4.9)."""

from __future__ import annotations


def catalog_2026_05() -> dict:
    return {
        "availableModels": [
            {"scenario": "SCENARIO_K2D5", "key": "k2d6", "displayName": "K2.6 Instant",
             "description": "Fast answers for everyday tasks"},
            {"scenario": "SCENARIO_K2D5", "key": "k2d6-thinking", "displayName": "K2.6 Thinking",
             "description": "Deep reasoning for complex problems", "thinking": True},
            {"scenario": "SCENARIO_OK_COMPUTER", "key": "k2d6-agent", "displayName": "K2.6 Agent",
             "description": "Research, slides, websites", "kimiPlusId": "ok-computer",
             "agentMode": "TYPE_NORMAL"},
            {"scenario": "SCENARIO_OK_COMPUTER", "key": "k2d6-agent-ultra",
             "displayName": "K2.6 Agent Swarm", "description": "Many agents in parallel",
             "kimiPlusId": "ok-computer", "agentMode": "TYPE_ULTRA"},
        ],
        "defaultScenario": {"scenario": "SCENARIO_K2D5"},
    }


def _effort(effort: str, name: str) -> dict:
    return {"effort": f"REASONING_EFFORT_{effort}", "displayName": name, "description": name}


def _context(length: str, name: str, level: str) -> dict:
    return {"contextLength": f"CONTEXT_LENGTH_{length}", "displayName": name,
            "description": name, "label": [], "available": level == "LEVEL_FREE",
            "minMembershipLevel": level}


def _agent(key: str, name: str, scenario: str, agent_mode: str, level: str) -> dict:
    return {
        "scenario": scenario, "displayName": name, "description": f"{name} agent",
        "inputPlaceholder": "Give me a task", "key": key, "id": key, "label": [],
        "kimiPlusId": "ok-computer", "agentMode": agent_mode,
        "reasoningEffortOptions": [_effort("LOW", "Low"), _effort("HIGH", "High"),
                                   _effort("MAX", "Max")],
        "defaultReasoningEffort": "REASONING_EFFORT_HIGH",
        "contextLengthOptions": [_context("L", "256K", "LEVEL_FREE"),
                                 _context("XL", "1M", "LEVEL_ADVANCED")],
        "defaultContextLength": "CONTEXT_LENGTH_L",
        "switchableTo": [], "minMembershipLevel": level, "greeting": "What can I do for you?",
    }


def catalog_2026_09() -> dict:
    instant = {
        "scenario": "SCENARIO_CHAT", "displayName": "Instant", "description": "Quick answers",
        "inputPlaceholder": "Ask anything", "key": "k2d6-chat", "id": "k2d6-chat", "label": [],
        "kimiPlusId": "", "agentMode": "",
        "reasoningEffortOptions": [_effort("NONE", "Off"), _effort("LOW", "Low")],
        "defaultReasoningEffort": "REASONING_EFFORT_LOW",
        "contextLengthOptions": [_context("L", "256K", "LEVEL_FREE")],
        "defaultContextLength": "CONTEXT_LENGTH_L",
        "switchableTo": ["k3-agent"], "minMembershipLevel": "LEVEL_FREE", "greeting": "Hi!",
    }
    return {
        "availableModels": [
            instant,
            _agent("k28-agent-preview", "K2.8", "SCENARIO_OK_COMPUTER", "TYPE_NORMAL", "LEVEL_FREE"),
            _agent("k3-agent", "K3", "SCENARIO_OK_COMPUTER", "TYPE_NORMAL", "LEVEL_FREE"),
            _agent("k3-agent-swarm", "K3 Swarm", "SCENARIO_OK_COMPUTER_SWARM", "TYPE_ULTRA",
                   "LEVEL_BASIC"),
        ],
        "defaultScenario": {"scenario": "SCENARIO_CHAT", "model": "k2d6-chat"},
        "defaultChatModel": "k2d6-chat",
        "defaultAgentModel": "k3-agent",
    }


def catalog(name: str) -> dict:
    return catalog_2026_09() if name == "2026-09" else catalog_2026_05()
